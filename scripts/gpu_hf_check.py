#!/usr/bin/env python3
"""The GPU window's check of a Hugging Face export (scripts/gpu_window.sh, stage hf): the real
`transformers` loads the exported directory with AutoModelForCausalLM, and its loss on one window
of seq_len + 1 tokens must equal `tessel eval`'s on the same tokens (both in fp32, TF32 off).

  scripts/gpu_hf_check.py TESSEL CHECKPOINT HF_DIR DATASET_PREFIX WORK_DIR

The window is the first seq_len + 1 tokens of DATASET_PREFIX, written to WORK_DIR/one as a
Megatron dataset of that one window, so that the sampler of `tessel eval` can only read those
tokens. Prints one JSON line; exit 1 when the losses differ by more than 1e-3 of their size.
"""
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data"))
import read_megatron  # noqa: E402

TOLERANCE = 1e-3  # relative: fp32 on both sides, in a different order of operations


def write_one_window(prefix, tokens):
    """A Megatron dataset (REFERENCE.md) of one document holding `tokens`, as u16."""
    with open(prefix + ".bin", "wb") as f:
        f.write(struct.pack("<%dH" % len(tokens), *tokens))
    with open(prefix + ".idx", "wb") as f:
        f.write(b"MMIDIDX\x00\x00" + struct.pack("<Q", 1) + bytes([8]) + struct.pack("<QQ", 1, 2))
        f.write(struct.pack("<i", len(tokens)) + struct.pack("<q", 0) + struct.pack("<qq", 0, 1))


def main():
    tessel, checkpoint, hf_dir, dataset, work = sys.argv[1:6]
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(hf_dir, "config.json")) as f:
        config = json.load(f)
    seq = config.get("n_positions") or config.get("max_position_embeddings")
    stream = [t for doc in read_megatron.read(dataset) for t in doc]
    assert len(stream) > seq, "the dataset holds fewer than seq_len + 1 tokens"
    window = stream[: seq + 1]
    one = os.path.join(work, "one")
    write_one_window(one, window)

    run = subprocess.run([tessel, "eval", checkpoint, "--data", one, "--batches", "1"], check=True,
                         capture_output=True, text=True)
    tessel_loss = json.loads(run.stdout.strip().splitlines()[-1])["loss"]

    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32).to(device).eval()
    ids = torch.tensor([window], dtype=torch.long, device=device)
    with torch.no_grad():
        logits = model(ids[:, :-1]).logits.float()
    hf_loss = F.cross_entropy(logits[0], ids[0, 1:]).item()
    diff = abs(hf_loss - tessel_loss) / max(abs(tessel_loss), 1e-12)
    print(json.dumps({"model_type": config.get("model_type"), "tokens": seq, "tessel_eval_loss": round(tessel_loss, 6),
                      "transformers_loss": round(hf_loss, 6), "relative_difference": diff, "ok": diff <= TOLERANCE}))
    return 0 if diff <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
