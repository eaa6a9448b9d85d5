#!/usr/bin/python3
"""Writes the golden data that Tessel's model tests compare against.

For each tiny config (GPT-2 and LLaMA) this builds the model in plain torch, in float64, from
fixed seeds, and saves one safetensors file holding: every parameter under its Hugging Face name,
one batch (tokens, targets), the logits and mean cross-entropy loss of that batch, the gradient
of the loss for every parameter (`grad.<name>`), and a 10-step AdamW curve on the same batch
(`loss_curve`: loss before each update; `grad_norm`: the global gradient norm before clipping).
All values are computed in float64 and stored as float32, so they are exact to f32 rounding.

Run with Debian's interpreter and python3-torch, not at test time; the outputs are committed:
    /usr/bin/python3 tests/golden/make_golden.py            # writes next to this script
See README.md in this folder for the exact conventions.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

DTYPE = torch.float64
STEPS = 10
OPT = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, clip=1.0)
TOKEN_SEED = 1234

GPT2 = dict(model_type="gpt2", vocab_size=96, n_positions=16, n_embd=32, n_head=4, n_layer=2,
            n_inner=128, layer_norm_epsilon=1e-5, batch_size=2, seq_len=16)
LLAMA = dict(model_type="llama", vocab_size=96, max_position_embeddings=16, hidden_size=32,
             num_attention_heads=4, num_key_value_heads=2, head_dim=8, num_hidden_layers=2,
             intermediate_size=64, rms_norm_eps=1e-5, rope_theta=10000.0,
             tie_word_embeddings=False, batch_size=2, seq_len=16)
# The LLaMA above with cross-layer attention (Hunyuan-Large's CLA): layer 1 attends with layer
# 0's keys and values and has no k/v projections.
CLA = dict(LLAMA, model_type="llama-cla", cla_share_factor=2)
# The LLaMA above with an MoE FFN in both layers (Qwen2-MoE names and layout): 8 routed experts
# of width 16, top-2 renormalised, one shared expert of width 32 behind Qwen2-MoE's sigmoid gate,
# dropless, Switch/Megatron aux loss with coefficient 0.01 added to the loss once per layer.
MOE = dict(LLAMA, model_type="llama-moe", num_experts=8, num_experts_per_tok=2,
           moe_intermediate_size=16, shared_expert_intermediate_size=32, norm_topk_prob=True,
           router_aux_loss_coef=0.01)


# ---- parameters -------------------------------------------------------------------------------

def gpt2_shapes(c):
    V, T, C, F_, L = c["vocab_size"], c["n_positions"], c["n_embd"], c["n_inner"], c["n_layer"]
    shapes = [("transformer.wte.weight", (V, C)), ("transformer.wpe.weight", (T, C))]
    for i in range(L):
        p = f"transformer.h.{i}."
        shapes += [(p + "ln_1.weight", (C,)), (p + "ln_1.bias", (C,)),
                   (p + "attn.c_attn.weight", (C, 3 * C)), (p + "attn.c_attn.bias", (3 * C,)),
                   (p + "attn.c_proj.weight", (C, C)), (p + "attn.c_proj.bias", (C,)),
                   (p + "ln_2.weight", (C,)), (p + "ln_2.bias", (C,)),
                   (p + "mlp.c_fc.weight", (C, F_)), (p + "mlp.c_fc.bias", (F_,)),
                   (p + "mlp.c_proj.weight", (F_, C)), (p + "mlp.c_proj.bias", (C,))]
    shapes += [("transformer.ln_f.weight", (C,)), ("transformer.ln_f.bias", (C,))]
    return shapes


def llama_shapes(c):
    V, C, F_, L = c["vocab_size"], c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    H, KV, D = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    shapes = [("model.embed_tokens.weight", (V, C))]
    for i in range(L):
        p = f"model.layers.{i}."
        shapes += [(p + "input_layernorm.weight", (C,)),
                   (p + "self_attn.q_proj.weight", (H * D, C)),
                   (p + "self_attn.k_proj.weight", (KV * D, C)),
                   (p + "self_attn.v_proj.weight", (KV * D, C)),
                   (p + "self_attn.o_proj.weight", (C, H * D)),
                   (p + "post_attention_layernorm.weight", (C,)),
                   (p + "mlp.gate_proj.weight", (F_, C)),
                   (p + "mlp.up_proj.weight", (F_, C)),
                   (p + "mlp.down_proj.weight", (C, F_))]
    shapes += [("model.norm.weight", (C,)), ("lm_head.weight", (V, C))]
    return shapes


def moe_shapes(c):
    C, L, E = c["hidden_size"], c["num_hidden_layers"], c["num_experts"]
    Fe, Fs = c["moe_intermediate_size"], c["shared_expert_intermediate_size"]
    dense = llama_shapes(c)
    shapes = []
    for name, shape in dense:
        if ".mlp." not in name:
            shapes.append((name, shape))
        elif name.endswith("mlp.gate_proj.weight"):
            p = name[: -len("gate_proj.weight")]
            shapes.append((p + "gate.weight", (E, C)))
            for e in range(E):
                q = p + f"experts.{e}."
                shapes += [(q + "gate_proj.weight", (Fe, C)), (q + "up_proj.weight", (Fe, C)),
                           (q + "down_proj.weight", (C, Fe))]
            q = p + "shared_expert."
            shapes += [(q + "gate_proj.weight", (Fs, C)), (q + "up_proj.weight", (Fs, C)),
                       (q + "down_proj.weight", (C, Fs)), (p + "shared_expert_gate.weight", (1, C))]
    return shapes


def cla_shapes(c):
    k = c["cla_share_factor"]
    def kept(name):
        if ".self_attn.k_proj." not in name and ".self_attn.v_proj." not in name:
            return True
        return int(name.split(".")[2]) % k == 0
    return [(name, shape) for name, shape in llama_shapes(c) if kept(name)]


def is_norm(name):
    return "ln_" in name or "layernorm" in name or name == "model.norm.weight"


def is_embedding(name):
    return name in ("transformer.wte.weight", "transformer.wpe.weight", "model.embed_tokens.weight")


def init_params(shapes):
    """Draws every parameter, in the listed order, from one torch.manual_seed(0) stream."""
    torch.manual_seed(0)
    params = {}
    for name, shape in shapes:
        z = torch.randn(shape, dtype=DTYPE)  # drawn in float64 directly
        if is_norm(name) and name.endswith(".weight"):
            v = 1.0 + 0.1 * z
        else:  # matrices, embeddings (std 0.02) and biases (0.02 * normal)
            v = 0.02 * z
        params[name] = v.requires_grad_(True)
    return params


# ---- models -----------------------------------------------------------------------------------

def causal_attention(q, k, v):
    """q, k, v: [B, H, T, D] -> [B, H, T, D]; softmax(q k^T / sqrt(D) + causal mask) v."""
    T, D = q.shape[-2], q.shape[-1]
    att = (q @ k.transpose(-1, -2)) / math.sqrt(D)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    return att @ v


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased, as nn.LayerNorm
    return (x - mean) / torch.sqrt(var + eps) * w + b


def gpt2_forward(P, c, tokens):
    B, T = tokens.shape
    C, H, eps = c["n_embd"], c["n_head"], c["layer_norm_epsilon"]
    D = C // H
    x = P["transformer.wte.weight"][tokens] + P["transformer.wpe.weight"][:T]
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        h = layer_norm(x, P[p + "ln_1.weight"], P[p + "ln_1.bias"], eps)
        qkv = h @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]  # Conv1D: x @ W + b
        q, k, v = qkv.split(C, dim=-1)
        q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
        y = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]
        h = layer_norm(x, P[p + "ln_2.weight"], P[p + "ln_2.bias"], eps)
        h = gelu_tanh(h @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"])
        x = x + h @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]
    x = layer_norm(x, P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps)
    return x @ P["transformer.wte.weight"].t()  # tied head


def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope(x, theta):
    """HF convention: element i rotates with element i + D/2; x: [B, heads, T, D]."""
    T, D = x.shape[-2], x.shape[-1]
    inv_freq = 1.0 / theta ** (torch.arange(0, D, 2, dtype=DTYPE) / D)  # [D/2]
    freqs = torch.outer(torch.arange(T, dtype=DTYPE), inv_freq)          # [T, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)                               # [T, D]
    return x * emb.cos() + rotate_half(x) * emb.sin()


def llama_attention(P, p, x, c, shared):
    """x + the attention of layer prefix p. With cross-layer attention (cla_share_factor k), a
    layer whose index is not a multiple of k has no k/v projections and attends with the rotated
    keys and values of its group's first layer: `shared` carries them, and is returned."""
    B, T, _ = x.shape
    H, KV, D = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    eps, theta = c["rms_norm_eps"], c["rope_theta"]
    h = rms_norm(x, P[p + "input_layernorm.weight"], eps)
    q = rope((h @ P[p + "self_attn.q_proj.weight"].t()).view(B, T, H, D).transpose(1, 2), theta)
    if p + "self_attn.k_proj.weight" in P:
        k = (h @ P[p + "self_attn.k_proj.weight"].t()).view(B, T, KV, D).transpose(1, 2)
        v = (h @ P[p + "self_attn.v_proj.weight"].t()).view(B, T, KV, D).transpose(1, 2)
        shared = (rope(k, theta), v)
    k, v = shared
    # GQA: query head h reads kv head h // (H / KV).
    k = k.repeat_interleave(H // KV, dim=1)
    v = v.repeat_interleave(H // KV, dim=1)
    y = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, H * D)
    return x + y @ P[p + "self_attn.o_proj.weight"].t(), shared


def llama_forward(P, c, tokens):
    eps = c["rms_norm_eps"]
    x = P["model.embed_tokens.weight"][tokens]
    shared = None
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x, shared = llama_attention(P, p, x, c, shared)
        h = rms_norm(x, P[p + "post_attention_layernorm.weight"], eps)
        g = F.silu(h @ P[p + "mlp.gate_proj.weight"].t())
        u = h @ P[p + "mlp.up_proj.weight"].t()
        x = x + (g * u) @ P[p + "mlp.down_proj.weight"].t()
    x = rms_norm(x, P["model.norm.weight"], eps)
    return x @ P["lm_head.weight"].t()


def swiglu_ffn(P, p, h):
    return (F.silu(h @ P[p + "gate_proj.weight"].t()) * (h @ P[p + "up_proj.weight"].t())) @ \
        P[p + "down_proj.weight"].t()


def moe_ffn(P, p, h, c):
    """h: [N, C]. Returns (output, aux loss). Top-k by probability (ties: lower index),
    weights renormalised over the k; the aux loss is coeff * E / (N^2 k) * sum_e count_e * P_e."""
    N, E, K = h.shape[0], c["num_experts"], c["num_experts_per_tok"]
    probs = (h @ P[p + "mlp.gate.weight"].t()).softmax(dim=-1)
    top = torch.topk(probs.detach(), K, dim=-1).indices          # [N, K], not differentiated
    w = probs.gather(1, top)
    if c["norm_topk_prob"]:
        w = w / w.sum(dim=-1, keepdim=True)
    y = torch.sigmoid(h @ P[p + "mlp.shared_expert_gate.weight"].t()) * swiglu_ffn(P, p + "mlp.shared_expert.", h)
    for e in range(E):
        token, slot = (top == e).nonzero(as_tuple=True)
        if len(token) == 0:
            continue
        out = swiglu_ffn(P, p + f"mlp.experts.{e}.", h[token])
        y = y.index_add(0, token, w[token, slot].unsqueeze(-1) * out)
    counts = F.one_hot(top, E).sum(dim=(0, 1)).to(DTYPE)           # top-k choices per expert
    aux = c["router_aux_loss_coef"] * E / (N * N * K) * (counts * probs.sum(dim=0)).sum()
    return y, aux


def moe_forward(P, c, tokens):
    """The LLaMA forward with MoE FFNs; returns (logits, summed aux loss)."""
    B, T = tokens.shape
    C, eps = c["hidden_size"], c["rms_norm_eps"]
    x = P["model.embed_tokens.weight"][tokens]
    aux_total = torch.zeros((), dtype=DTYPE)
    shared = None
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x, shared = llama_attention(P, p, x, c, shared)
        h = rms_norm(x, P[p + "post_attention_layernorm.weight"], eps)
        y, aux = moe_ffn(P, p, h.reshape(B * T, C), c)
        x = x + y.view(B, T, C)
        aux_total = aux_total + aux
    x = rms_norm(x, P["model.norm.weight"], eps)
    return x @ P["lm_head.weight"].t(), aux_total


def loss_of(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


# ---- golden data ------------------------------------------------------------------------------

def make(c, shapes, forward):
    P = init_params(shapes)
    g = torch.Generator().manual_seed(TOKEN_SEED)
    B, T, V = c["batch_size"], c["seq_len"], c["vocab_size"]
    tokens = torch.randint(0, V, (B, T), generator=g)
    targets = torch.randint(0, V, (B, T), generator=g)

    out = {name: P[name].detach().clone() for name, _ in shapes}  # initial weights
    # An MoE forward also returns its aux loss: "loss" stays the cross-entropy, "aux_loss" is
    # stored beside it, and every gradient (and the AdamW curve's updates) is of their sum.
    def total(logits_aux):
        if isinstance(logits_aux, tuple):
            return logits_aux[0], loss_of(logits_aux[0], targets), logits_aux[1]
        return logits_aux, loss_of(logits_aux, targets), None
    logits, loss, aux = total(forward(P, c, tokens))
    (loss if aux is None else loss + aux).backward()
    if aux is not None:
        out["aux_loss"] = aux.detach().reshape(1)
    out["tokens"] = tokens.to(torch.int32)
    out["targets"] = targets.to(torch.int32)
    out["logits"] = logits.detach()
    out["loss"] = loss.detach().reshape(1)
    for name, _ in shapes:
        out["grad." + name] = P[name].grad.detach().clone()

    # AdamW on the same batch. Decay only 2-D weights that are not embeddings.
    for p in P.values():
        p.grad = None
    decay = [P[n] for n, s in shapes if len(s) == 2 and not is_embedding(n)]
    no_decay = [P[n] for n, s in shapes if not (len(s) == 2 and not is_embedding(n))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": OPT["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=OPT["lr"], betas=OPT["betas"], eps=OPT["eps"], foreach=False)
    curve, norms = [], []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        _, l, aux = total(forward(P, c, tokens))
        (l if aux is None else l + aux).backward()
        # An expert no token chose gets no gradient in torch (None: AdamW would skip it, moments
        # and decay included); Tessel's flat buffers give it a zero gradient, as Megatron's do.
        for p in P.values():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        norm = torch.nn.utils.clip_grad_norm_(list(P.values()), OPT["clip"])
        curve.append(l.item())
        norms.append(norm.item())
        opt.step()
    out["loss_curve"] = torch.tensor(curve, dtype=DTYPE)
    out["grad_norm"] = torch.tensor(norms, dtype=DTYPE)

    meta = {k: (json.dumps(v) if isinstance(v, bool) else str(v)) for k, v in c.items()}
    meta.update({"init_seed": "0", "token_seed": str(TOKEN_SEED), "adamw_steps": str(STEPS),
                 "adamw_lr": str(OPT["lr"]), "adamw_beta1": str(OPT["betas"][0]),
                 "adamw_beta2": str(OPT["betas"][1]), "adamw_eps": str(OPT["eps"]),
                 "adamw_weight_decay": str(OPT["weight_decay"]), "grad_clip": str(OPT["clip"]),
                 "torch_version": torch.__version__})
    return out, meta


def save_safetensors(path, tensors, metadata):
    """The safetensors format by hand (struct + json), as Tessel's writer lays it out: tensors
    sorted by name, offsets contiguous from 0, __metadata__ first, JSON padded to 8 bytes."""
    header = {"__metadata__": dict(sorted({"format": "pt", **metadata}.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype.is_floating_point:
            t, dtype = t.to(torch.float32), "F32"
        else:
            t, dtype = t.to(torch.int32), "I32"
        data = t.contiguous().numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    torch.use_deterministic_algorithms(True)
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else here
    for file, c, shapes, forward in (("gpt2_tiny.safetensors", GPT2, gpt2_shapes(GPT2), gpt2_forward),
                                     ("llama_tiny.safetensors", LLAMA, llama_shapes(LLAMA),
                                      llama_forward),
                                     ("moe_tiny.safetensors", MOE, moe_shapes(MOE), moe_forward),
                                     ("cla_tiny.safetensors", CLA, cla_shapes(CLA), llama_forward)):
        tensors, meta = make(c, shapes, forward)
        path = os.path.join(out_dir, file)
        save_safetensors(path, tensors, meta)
        curve = ", ".join(f"{v:.4f}" for v in tensors["loss_curve"].tolist())
        print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes; "
              f"loss {tensors['loss'].item():.6f} (ln V = {math.log(c['vocab_size']):.6f}); "
              f"curve {curve}")


if __name__ == "__main__":
    main()
