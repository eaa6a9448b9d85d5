#!/usr/bin/env python3
"""A hardware profile with the constants Tessel's own kernels measured on the GPU (the GPU
window's calibrate stage; docs/planner.md, "Where the constants come from").

  scripts/gpu_calibrate.py PROFILE.yaml KERNELS.jsonl... [--date D] [--commit C] [--device TEXT]
      > NEW_PROFILE.yaml            (a JSON line of what was measured goes to stderr)

KERNELS.jsonl are bench/cuda_kernels.sh's lines (Tessel's time and rate per op at a config's
shapes, bf16). Three constants of PROFILE are replaced, each line saying it was measured:
  gemm_efficiency       the best matmul rate over the dtype's dense peak
  memory_efficiency     the best rate of a memory-bound op (norms, activations, AdamW) over memory_bw_gbs
  attention_efficiency  the fused attention forward's rate over that best matmul rate
These are rates at the configs' shapes, so gemm_efficiency is a lower bound of what large,
well-shaped GEMMs reach. Everything else in PROFILE is kept, comments included.
"""
import json
import re
import sys

MEMORY_BOUND = ("layernorm_forward", "layernorm_backward", "rmsnorm_forward", "rmsnorm_backward", "gelu_forward",
                "gelu_backward", "swiglu_forward", "swiglu_backward", "adamw")


def fail(message):
    sys.stderr.write("gpu_calibrate: %s\n" % message)
    sys.exit(2)


def number(text, key):
    m = re.search(r"^%s:\s*([0-9.eE+-]+)" % re.escape(key), text, re.M)
    if not m:
        fail("the profile has no '%s'" % key)
    return float(m.group(1))


def main(argv):
    options = {"--date": "", "--commit": "", "--device": ""}
    files = []
    i = 0
    while i < len(argv):
        if argv[i] in options:
            if i + 1 >= len(argv):
                fail("%s needs a value" % argv[i])
            options[argv[i]] = argv[i + 1]
            i += 2
        else:
            files.append(argv[i])
            i += 1
    if len(files) < 2:
        fail("usage: gpu_calibrate.py PROFILE.yaml KERNELS.jsonl... [--date D] [--commit C] [--device TEXT]")
    profile = open(files[0], encoding="utf-8").read()
    rows = []
    for path in files[1:]:
        for line in open(path, encoding="utf-8"):
            line = line.strip()
            if line.startswith("{"):
                row = json.loads(line)
                if row.get("bench") == "cuda_kernels":
                    rows.append(row)
    if not rows:
        fail("no bench/cuda_kernels.sh lines in %s" % ", ".join(files[1:]))
    dtypes = {r.get("dtype") for r in rows}
    if len(dtypes) != 1:
        fail("the kernels were measured in several dtypes (%s); calibrate from one" % ", ".join(sorted(map(str, dtypes))))
    dtype = dtypes.pop()
    peak = re.search(r"^peak_tflops:.*\b%s:\s*([0-9.]+)" % re.escape(dtype), profile, re.M)
    if not peak:
        fail("the profile has no peak_tflops for %s" % dtype)
    peak = float(peak.group(1))
    bandwidth = number(profile, "memory_bw_gbs")

    def best(names_or_test, key):
        found = [(r[key], r["op"], r["config"]) for r in rows if r.get(key) and names_or_test(r["op"])]
        return max(found) if found else None

    gemm = best(lambda op: op.startswith("matmul_"), "tessel_tflops")
    memory = best(lambda op: op in MEMORY_BOUND, "tessel_gbps")
    attention = best(lambda op: op in ("attention_forward_flash", "attention_forward"), "tessel_tflops")
    if gemm is None or memory is None or attention is None:
        fail("the kernels lines lack a matmul, a memory-bound op or the attention forward")
    measured = {"gemm_efficiency": round(gemm[0] / peak, 3), "memory_efficiency": round(memory[0] / bandwidth, 3),
                "attention_efficiency": round(attention[0] / gemm[0], 3)}
    where = "measured %s on %s with tessel bench kernels (commit %s)" % (
        options["--date"] or "?", options["--device"] or "the GPU", options["--commit"] or "?")
    notes = {"gemm_efficiency": "%s: %s at %s's shapes, %.1f TFLOPS" % (where, gemm[1], gemm[2], gemm[0]),
             "memory_efficiency": "%s: %s at %s's shapes, %.0f GB/s" % (where, memory[1], memory[2], memory[0]),
             "attention_efficiency": "%s: %s at %s's shapes, %.1f TFLOPS" % (where, attention[1], attention[2],
                                                                             attention[0])}
    for key, value in measured.items():
        line = "%s: %s  # %s" % (key, value, notes[key])
        pattern = re.compile(r"^%s:.*$" % re.escape(key), re.M)
        profile = pattern.sub(line, profile) if pattern.search(profile) else profile.rstrip("\n") + "\n" + line + "\n"
    sys.stdout.write(profile)
    measured.update({"dtype": dtype, "gemm_op": gemm[1], "gemm_tflops": gemm[0], "memory_op": memory[1],
                     "memory_gbps": memory[0], "attention_tflops": attention[0]})
    sys.stderr.write(json.dumps(measured) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
