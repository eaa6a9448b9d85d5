#!/usr/bin/env python3
"""summary.json of a GPU window (scripts/gpu_window.sh): each stage's status and time, and every
figure the stages printed, gathered from the window's work folder.

  scripts/gpu_summary.py WORK_DIR COMMIT STARTED_UNIX_S > summary.json

Reads what exists and skips what does not, so a window cut short still gets a summary.
"""
import json
import os
import re
import sys
import time


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def json_lines(path):
    rows = []
    for line in read(path).splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def stages(work):
    out = []
    for line in read(os.path.join(work, "stages.tsv")).splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            out.append({"stage": parts[0], "status": parts[1], "seconds": int(parts[2]),
                        "note": parts[3] if len(parts) > 3 else ""})
    return out


def machine(work):
    text = read(os.path.join(work, "logs", "probe.log"))
    info = {}
    m = re.search(r"^(NVIDIA [^,\n]+), ([0-9]+ MiB), ([0-9.]+), ([0-9]+ MHz)", text, re.M)
    if m:
        info.update(gpu=m.group(1), memory=m.group(2), driver=m.group(3), max_sm_clock=m.group(4))
    m = re.search(r"release ([0-9.]+), (V[0-9.]+)", text)
    if m:
        info["cuda"] = m.group(2)
    m = re.search(r"torch (\S+) transformers (\S+)", text)
    if m:
        info.update(torch=m.group(1), transformers=m.group(2))
    m = re.search(r"^gcc .*\) ([0-9.]+)", text, re.M)
    if m:
        info["gcc"] = m.group(1)
    return info


def tests(work):
    out = {}
    for name in ("tests_core", "tests_optim", "tests_train", "tests_parallel"):
        text = read(os.path.join(work, "logs", "tests_%s.txt" % name))
        if not text:
            continue
        passed = re.search(r"Passed (?:all )?(\d+) test cases? with (\d+) assertions", text)
        failed = re.search(r"Failed (\d+) test cases?", text)
        cases = re.search(r"test cases: *(\d+) \| *(\d+) passed \| *(\d+) failed", text)
        entry = {}
        if passed:
            entry = {"cases": int(passed.group(1)), "failed": 0}
        if cases:
            entry = {"cases": int(cases.group(1)), "failed": int(cases.group(3))}
        elif failed:
            entry["failed"] = int(failed.group(1))
        entry["failures"] = sorted(set(re.findall(r"^(.*): FAILED:", text, re.M)))[:20]
        entry["skipped_no_gpu"] = "no CUDA device" in text
        out[name] = entry
    return out


def sanitizer(work):
    out = {}
    for tool in ("memcheck", "racecheck"):
        text = read(os.path.join(work, "logs", "sanitizer_%s.txt" % tool))
        if text:
            m = re.search(r"ERROR SUMMARY: (\d+) error", text) or re.search(r"\((\d+) errors?, \d+ warnings?\)", text)
            out[tool] = {"errors": int(m.group(1)) if m else None,
                         "unsupported": "not supported" in text.lower() or "Device not supported" in text}
    return out


def main():
    work, commit, started = sys.argv[1], sys.argv[2], int(sys.argv[3])
    summary = {"commit": commit, "date": time.strftime("%Y-%m-%d", time.gmtime(started)),
               "seconds": int(time.time()) - started, "machine": machine(work), "stages": stages(work),
               "tests": tests(work), "sanitizer": sanitizer(work)}
    for name in ("gpt2-124m", "llama-1b"):
        kernels = [r for r in json_lines(os.path.join(work, "kernels_%s.jsonl" % name)) if r.get("bench") == "cuda_kernels"]
        if kernels:
            summary.setdefault("kernels", {})[name] = {
                r["op"]: {k: r.get(k) for k in ("tessel_ms", "torch_ms", "torch_over_tessel", "tessel_tflops", "tessel_gbps")
                          if r.get(k) is not None} for r in kernels}
        step = json_lines(os.path.join(work, "step_%s.jsonl" % name))
        if step:
            summary.setdefault("step", {})[name] = {"tessel": step[0] if len(step) > 0 else None,
                                                    "torch": step[1] if len(step) > 1 else None,
                                                    "compare": step[2] if len(step) > 2 else None}
    metrics = json_lines(os.path.join(work, "train_metrics.jsonl"))
    if metrics:
        times = [m["step_time_s"] for m in metrics[1:] if "step_time_s" in m] or [metrics[0].get("step_time_s", 0)]
        summary["train"] = {"steps": len(metrics), "first_loss": metrics[0].get("loss"), "last_loss": metrics[-1].get("loss"),
                            "eval_losses": [m["eval_loss"] for m in metrics if "eval_loss" in m],
                            "median_step_s": sorted(times)[len(times) // 2],
                            "median_tokens_per_s": sorted(m.get("tokens_per_s", 0) for m in metrics[1:] or metrics)[
                                len(metrics[1:] or metrics) // 2]}
    calibrate = json_lines(os.path.join(work, "calibrate.json"))
    if calibrate:
        summary["calibrate"] = calibrate[-1]
        ratios = re.findall(r"^ +[0-9]+ +tp .*? ([0-9.]+)$", read(os.path.join(work, "tune.txt")), re.M)
        if ratios:
            summary["calibrate"]["tune_ratios"] = [float(r) for r in ratios]
    layouts = json_lines(os.path.join(work, "layouts.jsonl"))
    if layouts:
        summary["layouts"] = layouts
    hf = json_lines(os.path.join(work, "hf.json"))
    if hf:
        summary["hf"] = hf[-1]
    json.dump(summary, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
