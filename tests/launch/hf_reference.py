#!/usr/bin/env python3
"""A reference GPT-2 / LLaMA / Mixtral / Qwen2-MoE forward written from the Hugging Face layout
(REFERENCE.md; Mixtral's and Qwen2-MoE's modeling files for the MoE blocks), sharing
no code with Tessel, over an exported directory (config.json + model.safetensors or shards with
model.safetensors.index.json). Its safetensors reader checks the format's rules itself.

Prints the mean next-token cross-entropy over the first window of seq_len + 1 tokens of a
Megatron dataset, as JSON: {"loss": ...}.

  python3 tests/launch/hf_reference.py HF_DIR DATASET_PREFIX SEQ_LEN
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
import read_megatron  # noqa: E402

SIZES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1}


def read_safetensors(path):
    """Tensors of one file, after checking the rules of the format."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    assert n <= 100_000_000, "header too large"
    header = data[8 : 8 + n].decode("utf-8")
    assert header.startswith("{"), "header must start with {"
    meta = json.loads(header)
    buffer = data[8 + n :]
    extra = meta.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()), "metadata: str -> str"
    assert extra.get("format") == "pt", "transformers expects __metadata__.format = pt"
    spans = sorted((t["data_offsets"][0], t["data_offsets"][1], name) for name, t in meta.items())
    pos = 0
    for begin, end, name in spans:
        assert begin == pos, f"{name}: hole or overlap at {begin}, expected {pos}"
        t = meta[name]
        assert end - begin == math.prod(t["shape"]) * SIZES[t["dtype"]], f"{name}: size"
        pos = end
    assert pos == len(buffer), "file size is not 8 + N + the last end"
    out = {}
    for name, t in meta.items():
        assert t["dtype"] == "F32", f"{name}: exported as {t['dtype']}"
        b, e = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(buffer[b:e]), dtype=torch.float32).reshape(t["shape"])
    return out


def read_model(d):
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        tensors = {}
        for file in sorted(set(weight_map.values())):
            tensors.update(read_safetensors(os.path.join(d, file)))
        assert set(tensors) == set(weight_map), "index and shards disagree"
    else:
        tensors = read_safetensors(os.path.join(d, "model.safetensors"))
    with open(os.path.join(d, "config.json")) as f:
        return json.load(f), tensors


def gpt2_logits(c, w, idx):
    T = idx.shape[0]
    C, H = c["n_embd"], c["n_head"]
    D = C // H
    eps = c["layer_norm_epsilon"]
    p = lambda n: w["transformer." + n]
    x = p("wte.weight")[idx] + p("wpe.weight")[:T]
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    for i in range(c["n_layer"]):
        h = lambda n: p(f"h.{i}.{n}")
        a = F.layer_norm(x, (C,), h("ln_1.weight"), h("ln_1.bias"), eps)
        qkv = a @ h("attn.c_attn.weight") + h("attn.c_attn.bias")  # Conv1D: [in, out]
        q, k, v = (t.reshape(T, H, D).transpose(0, 1) for t in qkv.split(C, dim=1))
        s = (q @ k.transpose(1, 2)) / math.sqrt(D)
        y = torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v
        x = x + y.transpose(0, 1).reshape(T, C) @ h("attn.c_proj.weight") + h("attn.c_proj.bias")
        m = F.layer_norm(x, (C,), h("ln_2.weight"), h("ln_2.bias"), eps)
        m = F.gelu(m @ h("mlp.c_fc.weight") + h("mlp.c_fc.bias"), approximate="tanh")
        x = x + m @ h("mlp.c_proj.weight") + h("mlp.c_proj.bias")
    x = F.layer_norm(x, (C,), p("ln_f.weight"), p("ln_f.bias"), eps)
    return x @ p("wte.weight").T


def swiglu(lin, m, gate, up, down):
    return lin(F.silu(lin(m, gate)) * lin(m, up), down)


def ffn(c, w, pre, i, m, lin):
    """The layer's MLP: LLaMA's, or an MoE block as MixtralSparseMoeBlock / Qwen2MoeSparseMoeBlock
    compute it (softmax router, top-k, Mixtral always renormalising, Qwen2-MoE when
    norm_topk_prob; Qwen2-MoE's shared expert times sigmoid of its gate)."""
    kind = c["model_type"]
    if kind == "qwen2_moe":
        step = c.get("decoder_sparse_step", 1)
        sparse = i not in c.get("mlp_only_layers", []) and (i + 1) % step == 0
        if not sparse:
            kind = "llama"
    if kind == "llama":
        return swiglu(lin, m, pre + "mlp.gate_proj.weight", pre + "mlp.up_proj.weight", pre + "mlp.down_proj.weight")
    K = c["num_experts_per_tok"]
    if kind == "mixtral":
        E, moe = c["num_local_experts"], pre + "block_sparse_moe."
        names = lambda e: [moe + f"experts.{e}.{n}.weight" for n in ("w1", "w3", "w2")]
        normalise = True
    else:
        E, moe = c["num_experts"], pre + "mlp."
        names = lambda e: [moe + f"experts.{e}.{n}.weight" for n in ("gate_proj", "up_proj", "down_proj")]
        normalise = c.get("norm_topk_prob", False)
    probs = torch.softmax(lin(m, moe + "gate.weight"), dim=-1, dtype=torch.float)
    top_w, top_e = torch.topk(probs, K, dim=-1)
    if normalise:
        top_w = top_w / top_w.sum(dim=-1, keepdim=True)
    y = torch.zeros_like(m)
    for t in range(m.shape[0]):
        for j in range(K):
            y[t] += top_w[t, j] * swiglu(lin, m[t : t + 1], *names(int(top_e[t, j])))[0]
    if kind == "qwen2_moe":
        shared = swiglu(lin, m, moe + "shared_expert.gate_proj.weight", moe + "shared_expert.up_proj.weight",
                        moe + "shared_expert.down_proj.weight")
        y = y + torch.sigmoid(lin(m, moe + "shared_expert_gate.weight")) * shared
    return y


def llama_logits(c, w, idx):
    T = idx.shape[0]
    C, H, KV = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    D = c.get("head_dim", C // H)
    eps = c["rms_norm_eps"]
    rms = lambda x, g: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g
    lin = lambda x, name: x @ w[name].T + (w[name[:-len("weight")] + "bias"] if name[:-len("weight")] + "bias" in w else 0)
    inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, D, 2).double() / D))
    ang = torch.outer(torch.arange(T).double(), inv)
    cos, sin = torch.cat((ang, ang), -1).cos().float(), torch.cat((ang, ang), -1).sin().float()
    rot = lambda t: torch.cat((-t[..., D // 2 :], t[..., : D // 2]), -1)  # rotate_half
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    x = w["model.embed_tokens.weight"][idx]
    for i in range(c["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        a = rms(x, w[pre + "input_layernorm.weight"])
        q = lin(a, pre + "self_attn.q_proj.weight").reshape(T, H, D).transpose(0, 1)
        k = lin(a, pre + "self_attn.k_proj.weight").reshape(T, KV, D).transpose(0, 1)
        v = lin(a, pre + "self_attn.v_proj.weight").reshape(T, KV, D).transpose(0, 1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
        s = (q @ k.transpose(1, 2)) / math.sqrt(D)
        y = torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v
        x = x + lin(y.transpose(0, 1).reshape(T, H * D), pre + "self_attn.o_proj.weight")
        m = rms(x, w[pre + "post_attention_layernorm.weight"])
        x = x + ffn(c, w, pre, i, m, lin)
    x = rms(x, w["model.norm.weight"])
    head = w["model.embed_tokens.weight"] if c.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


def main():
    d, prefix, T = sys.argv[1], sys.argv[2], int(sys.argv[3])
    config, weights = read_model(d)
    tokens = [t for doc in read_megatron.read(prefix) for t in doc]
    assert len(tokens) > T, "the dataset needs seq_len + 1 tokens"
    window = torch.tensor(tokens[: T + 1])
    logits = (gpt2_logits if config["model_type"] == "gpt2" else llama_logits)(config, weights, window[:T])
    loss = F.cross_entropy(logits.double(), window[1:])
    print(json.dumps({"loss": loss.item()}))


if __name__ == "__main__":
    main()
