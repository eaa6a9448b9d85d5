#include "core/checkpoint/hf_format.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "core/error.h"
#include "core/io/file.h"
#include "core/io/json.h"
#include "core/io/safetensors.h"
#include "core/model/param_specs.h"
#include "core/strings.h"
#include "core/text_escape.h"

namespace tessel {
namespace fs = std::filesystem;
namespace {

using Obj = JsonValue::Object;

void require(bool ok, const std::string& arch, const std::string& what) {
  TESSEL_CHECK(ok) << "model." << what << " cannot be exported as a Hugging Face " << arch
                   << " model; hint: export models whose config matches the " << arch << " family";
}

// Which transformers class an MoE model exports as: Mixtral (no shared expert, every layer MoE)
// or Qwen2-MoE (a gated shared expert; dense layers through mlp_only_layers). Throws naming
// what neither can represent.
bool exports_as_mixtral(const ModelConfig& m) {
  const MoeConfig& e = m.moe;
  const std::string family = e.shared_width(m.ffn_dim) > 0 ? "Qwen2-MoE" : "Mixtral";
  require(m.cla_share == 1, family, "cla_share=" + std::to_string(m.cla_share) + " (cross-layer attention)");
  require(e.router == MoeRouter::kSoftmax, family, "moe.router=sigmoid");
  require(e.balance != MoeBalance::kAuxFree, family, "moe.balance=aux_free (its selection bias)");
  require(!m.bias, family, "bias=true (an o_proj or expert bias)");
  if (e.shared_width(m.ffn_dim) == 0) {
    require(e.every == 1 && e.first_dense == 0, family, "moe.every/first_dense (dense layers)");
    require(e.norm_topk, family, "moe.norm_topk=false");
    return true;
  }
  require(e.shared_gate, family, "moe.shared_gate=false (Qwen2-MoE gates its shared expert)");
  return false;
}

// A Tessel parameter's name in the exported family: Mixtral's block_sparse_moe names; the same
// name elsewhere.
std::string hf_name(bool mixtral, const std::string& name) {
  if (!mixtral) return name;
  const size_t at = name.find(".mlp.");
  if (at == std::string::npos) return name;
  std::string rest = name.substr(at + 5);
  for (const auto& [from, to] :
       {std::pair<const char*, const char*>{"gate_proj.", "w1."}, {"down_proj.", "w2."}, {"up_proj.", "w3."}}) {
    const size_t p = rest.find(from);
    if (rest.rfind("experts.", 0) == 0 && p != std::string::npos) rest.replace(p, std::strlen(from), to);
  }
  return name.substr(0, at) + ".block_sparse_moe." + rest;
}

// The Tessel name of a tensor in a Hugging Face file: hf_name undone.
std::string tessel_name_of(const std::string& name) {
  const size_t at = name.find(".block_sparse_moe.");
  if (at == std::string::npos) return name;
  std::string rest = name.substr(at + 18);
  for (const auto& [from, to] :
       {std::pair<const char*, const char*>{"w1.", "gate_proj."}, {"w2.", "down_proj."}, {"w3.", "up_proj."}}) {
    const size_t p = rest.find(from);
    if (rest.rfind("experts.", 0) == 0 && p != std::string::npos) rest.replace(p, std::strlen(from), to);
  }
  return name.substr(0, at) + ".mlp." + rest;
}

}  // namespace

std::string hf_config_json(const ModelConfig& m) {
  Obj o;
  if (m.arch == Arch::kGpt2) {
    require(m.norm == Norm::kLayerNorm, "GPT-2", std::string("norm=") + name_of(m.norm));
    require(m.activation == Activation::kGelu, "GPT-2", std::string("activation=") + name_of(m.activation));
    require(m.position == Position::kLearned, "GPT-2", std::string("position=") + name_of(m.position));
    require(m.bias, "GPT-2", "bias=false");
    require(m.tie_embeddings, "GPT-2", "tie_embeddings=false");
    require(m.kv_heads == m.heads, "GPT-2", "kv_heads=" + std::to_string(m.kv_heads) + " (grouped-query attention)");
    o = {{"architectures", JsonValue::array({JsonValue::string("GPT2LMHeadModel")})},
         {"model_type", JsonValue::string("gpt2")},
         {"vocab_size", JsonValue::integer(m.vocab_size)},
         {"n_positions", JsonValue::integer(m.seq_len)},
         {"n_embd", JsonValue::integer(m.d_model)},
         {"n_layer", JsonValue::integer(m.layers)},
         {"n_head", JsonValue::integer(m.heads)},
         {"n_inner", JsonValue::integer(m.ffn_dim)},
         {"activation_function", JsonValue::string("gelu_new")},
         {"layer_norm_epsilon", JsonValue::number(m.norm_eps)},
         {"initializer_range", JsonValue::number(m.init_std)},
         {"tie_word_embeddings", JsonValue::boolean(true)},
         {"torch_dtype", JsonValue::string("float32")}};
  } else {
    require(m.norm == Norm::kRmsNorm, "LLaMA", std::string("norm=") + name_of(m.norm));
    require(m.activation == Activation::kSwiGlu, "LLaMA", std::string("activation=") + name_of(m.activation));
    require(m.position == Position::kRope, "LLaMA", std::string("position=") + name_of(m.position));
    o = {{"architectures", JsonValue::array({JsonValue::string("LlamaForCausalLM")})},
         {"model_type", JsonValue::string("llama")},
         {"vocab_size", JsonValue::integer(m.vocab_size)},
         {"max_position_embeddings", JsonValue::integer(m.seq_len)},
         {"hidden_size", JsonValue::integer(m.d_model)},
         {"intermediate_size", JsonValue::integer(m.ffn_dim)},
         {"num_hidden_layers", JsonValue::integer(m.layers)},
         {"num_attention_heads", JsonValue::integer(m.heads)},
         {"num_key_value_heads", JsonValue::integer(m.kv_heads)},
         {"head_dim", JsonValue::integer(m.head_dim())},
         {"hidden_act", JsonValue::string("silu")},
         {"rms_norm_eps", JsonValue::number(m.norm_eps)},
         {"rope_theta", JsonValue::number(m.rope_theta)},
         {"attention_bias", JsonValue::boolean(m.bias)},
         {"mlp_bias", JsonValue::boolean(m.bias)},
         {"initializer_range", JsonValue::number(m.init_std)},
         {"tie_word_embeddings", JsonValue::boolean(m.tie_embeddings)},
         {"torch_dtype", JsonValue::string("float32")}};
    if (m.moe.enabled()) {
      const MoeConfig& e = m.moe;
      const bool mixtral = exports_as_mixtral(m);
      const auto set = [&](const std::string& key, JsonValue value) {
        for (auto& [k, v] : o) {
          if (k == key) {
            v = std::move(value);
            return;
          }
        }
        o.emplace_back(key, std::move(value));
      };
      set("architectures",
          JsonValue::array({JsonValue::string(mixtral ? "MixtralForCausalLM" : "Qwen2MoeForCausalLM")}));
      set("model_type", JsonValue::string(mixtral ? "mixtral" : "qwen2_moe"));
      set("num_experts_per_tok", JsonValue::integer(e.top_k));
      set("router_aux_loss_coef", JsonValue::number(e.balance == MoeBalance::kAux ? e.aux_loss_coeff : 0.0));
      if (mixtral) {
        set("intermediate_size", JsonValue::integer(e.expert_width(m.ffn_dim)));
        set("num_local_experts", JsonValue::integer(e.experts));
      } else {
        std::vector<JsonValue> dense;
        for (int64_t i = 0; i < m.layers; ++i) {
          if (!e.is_moe_layer(i)) dense.push_back(JsonValue::integer(i));
        }
        set("num_experts", JsonValue::integer(e.experts));
        set("moe_intermediate_size", JsonValue::integer(e.expert_width(m.ffn_dim)));
        set("shared_expert_intermediate_size", JsonValue::integer(e.shared_width(m.ffn_dim)));
        set("norm_topk_prob", JsonValue::boolean(e.norm_topk));
        set("decoder_sparse_step", JsonValue::integer(1));
        set("mlp_only_layers", JsonValue::array(std::move(dense)));
        set("use_sliding_window", JsonValue::boolean(false));
      }
    } else {
      require(m.cla_share == 1, "LLaMA", "cla_share=" + std::to_string(m.cla_share) + " (cross-layer attention)");
    }
  }
  return JsonValue::object(std::move(o)).dump() + "\n";
}

std::vector<std::string> export_hf(const ModelConfig& model, const ParameterStore& whole, const std::string& out_dir,
                                   uint64_t max_shard_bytes) {
  TESSEL_CHECK(whole.tp_size() == 1) << "export_hf takes whole tensors";
  const std::string config = hf_config_json(model);  // checks the model first
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  TESSEL_CHECK(!ec) << "cannot create '" << out_dir << "': " << ec.message();
  write_file_atomic((fs::path(out_dir) / "config.json").string(), config);
  std::vector<std::string> written = {"config.json"};
  // The tensors under their names in the family: Mixtral renames its experts; Qwen2-MoE's
  // attention always has q/k/v biases, which a Tessel model without biases exports as zeros.
  const bool mixtral = model.moe.enabled() && exports_as_mixtral(model);
  const bool qkv_zero_bias = model.moe.enabled() && !mixtral;
  std::vector<std::pair<std::string, Tensor>> items;
  for (const ParamEntry& e : whole.entries()) {
    items.emplace_back(hf_name(mixtral, e.spec.name), whole.param(e.spec.name));
    const std::string v = ".self_attn.v_proj.weight";
    if (qkv_zero_bias && ends_with(e.spec.name, v)) {
      const std::string layer = e.spec.name.substr(0, e.spec.name.size() - v.size());
      for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
        const std::string name = layer + ".self_attn." + proj + ".weight";
        items.emplace_back(layer + ".self_attn." + proj + ".bias",
                           Tensor::zeros({whole.entry(name).spec.shape[0]}, DType::F32));
      }
    }
  }
  // Shards in parameter order, each up to max_shard_bytes (a larger tensor gets one of its own).
  std::vector<std::vector<const std::pair<std::string, Tensor>*>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (const auto& item : items) {
    const uint64_t bytes = static_cast<uint64_t>(item.second.numel()) * sizeof(float);
    if (in_shard > 0 && in_shard + bytes > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(&item);
    in_shard += bytes;
    total += bytes;
  }
  Obj weight_map;
  for (size_t k = 0; k < shards.size(); ++k) {
    char name[64];
    if (shards.size() == 1) {
      std::snprintf(name, sizeof(name), "model.safetensors");
    } else {
      std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
    }
    SafetensorsWriter w;
    for (const auto* item : shards[k]) {
      w.add(item->first, item->second);
      weight_map.emplace_back(item->first, JsonValue::string(name));
    }
    w.write((fs::path(out_dir) / name).string());
    written.push_back(name);
  }
  if (shards.size() > 1) {
    const JsonValue index = JsonValue::object(
        {{"metadata", JsonValue::object({{"total_size", JsonValue::integer(static_cast<int64_t>(total))}})},
         {"weight_map", JsonValue::object(std::move(weight_map))}});
    write_file_atomic((fs::path(out_dir) / "model.safetensors.index.json").string(), index.dump() + "\n");
    written.push_back("model.safetensors.index.json");
  }
  return written;
}

namespace {

// config.json and model.safetensors.index.json are read whole. An index holds one short line per
// tensor, well under 1 MB for the largest public models, so more than this is a damaged or
// crafted file, refused before it is read.
constexpr uint64_t kMaxHfJsonBytes = uint64_t{64} << 20;

// Weights saved as Python pickles (torch.save: pytorch_model.bin, *.pt, *.pth, *.ckpt): loading
// one runs whatever code it holds, so they are only ever named, never opened.
std::vector<std::string> pickle_files(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    for (const char* suffix : {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"}) {
      if (ends_with(name, suffix)) found.push_back(name);
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

// A size of the model (a width, a count of layers or heads, the vocabulary): an integer in
// [1, max], the bounds validate_config puts on the setting it becomes, checked here before the
// values are combined (hidden_size / num_attention_heads, 4 * n_embd).
int64_t get_size(const JsonValue& c, const std::string& key, const std::string& file, int64_t fallback = -1,
                 int64_t max = kMaxShapeDim) {
  const JsonValue* v = c.find(key);
  if (v == nullptr || v->is_null()) {
    TESSEL_CHECK(fallback >= 0) << file << ": no '" << key << "'; a "
                                << "config.json of this model type needs it";
    return fallback;
  }
  const int64_t n = v->as_int();
  TESSEL_CHECK(n >= 1 && n <= max) << file << ": '" << key << "' is " << n << "; expected an integer from 1 to " << max;
  return n;
}

double get_double(const JsonValue& c, const std::string& key, double fallback) {
  const JsonValue* v = c.find(key);
  return v == nullptr || v->is_null() ? fallback : v->as_double();
}

bool get_bool(const JsonValue& c, const std::string& key, bool fallback) {
  const JsonValue* v = c.find(key);
  return v == nullptr || v->is_null() ? fallback : v->as_bool();
}

}  // namespace

ModelConfig read_hf_config(const std::string& dir) {
  const std::string file = contained_path(dir, "config.json", dir);
  TESSEL_CHECK(path_exists(file)) << "no config.json in '" << dir << "'; hint: point at a Hugging Face model directory";
  const JsonValue c = parse_json(read_file(file, kMaxHfJsonBytes), file);
  const JsonValue* type = c.find("model_type");
  TESSEL_CHECK(type != nullptr && type->is_string()) << file << ": no model_type";
  ModelConfig m;
  if (type->as_string() == "gpt2") {
    m.arch = Arch::kGpt2;
    m.vocab_size = get_size(c, "vocab_size", file, -1, kMaxVocabSize);
    m.seq_len = get_size(c, "n_positions", file);
    m.d_model = get_size(c, "n_embd", file);
    m.layers = get_size(c, "n_layer", file, -1, kMaxLayers);
    m.heads = m.kv_heads = get_size(c, "n_head", file);
    m.ffn_dim = get_size(c, "n_inner", file, 4 * m.d_model);
    m.norm = Norm::kLayerNorm;
    m.norm_eps = get_double(c, "layer_norm_epsilon", 1e-5);
    m.activation = Activation::kGelu;
    m.position = Position::kLearned;
    m.bias = true;
    m.tie_embeddings = true;
    const JsonValue* act = c.find("activation_function");
    TESSEL_CHECK(act == nullptr || act->as_string() == "gelu_new" || act->as_string() == "gelu_pytorch_tanh")
        << file << ": activation_function '" << act->as_string() << "'; Tessel's GPT-2 uses the tanh GELU (gelu_new)";
  } else if (type->as_string() == "llama" || type->as_string() == "mixtral" || type->as_string() == "qwen2_moe") {
    m.arch = Arch::kLlama;
    m.vocab_size = get_size(c, "vocab_size", file, -1, kMaxVocabSize);
    m.seq_len = get_size(c, "max_position_embeddings", file);
    m.d_model = get_size(c, "hidden_size", file);
    m.layers = get_size(c, "num_hidden_layers", file, -1, kMaxLayers);
    m.heads = get_size(c, "num_attention_heads", file);
    m.kv_heads = get_size(c, "num_key_value_heads", file, m.heads);
    m.ffn_dim = get_size(c, "intermediate_size", file);
    TESSEL_CHECK(get_size(c, "head_dim", file, m.d_model / m.heads) == m.d_model / m.heads)
        << file << ": head_dim differs from hidden_size / num_attention_heads, which Tessel's LLaMA assumes";
    m.norm = Norm::kRmsNorm;
    m.norm_eps = get_double(c, "rms_norm_eps", 1e-6);
    m.activation = Activation::kSwiGlu;
    m.position = Position::kRope;
    m.rope_theta = get_double(c, "rope_theta", 10000.0);
    const JsonValue* scaling = c.find("rope_scaling");
    TESSEL_CHECK(scaling == nullptr || scaling->is_null())
        << file << ": rope_scaling is not supported by Tessel's RoPE";
    m.bias = get_bool(c, "attention_bias", false);
    TESSEL_CHECK(get_bool(c, "mlp_bias", m.bias) == m.bias)
        << file << ": attention_bias and mlp_bias differ; Tessel's model.bias sets both";
    m.tie_embeddings = get_bool(c, "tie_word_embeddings", false);
    const JsonValue* act = c.find("hidden_act");
    TESSEL_CHECK(act == nullptr || act->as_string() == "silu")
        << file << ": hidden_act '" << act->as_string() << "'; Tessel's LLaMA uses SwiGLU (silu)";
    if (type->as_string() == "mixtral") {
      // Every layer MoE, no shared expert; intermediate_size is one expert's width.
      m.moe.experts = get_size(c, "num_local_experts", file);
      m.moe.top_k = get_size(c, "num_experts_per_tok", file);
      m.moe.expert_ffn_dim = m.ffn_dim;
      m.moe.aux_loss_coeff = get_double(c, "router_aux_loss_coef", 0.01);
      m.bias = false;
    } else if (type->as_string() == "qwen2_moe") {
      m.moe.experts = get_size(c, "num_experts", file);
      m.moe.top_k = get_size(c, "num_experts_per_tok", file);
      m.moe.expert_ffn_dim = get_size(c, "moe_intermediate_size", file);
      m.moe.shared_ffn_dim = get_size(c, "shared_expert_intermediate_size", file);
      m.moe.shared_experts = 1;
      m.moe.shared_gate = true;
      m.moe.norm_topk = get_bool(c, "norm_topk_prob", false);
      m.moe.aux_loss_coeff = get_double(c, "router_aux_loss_coef", 0.001);
      m.bias = false;  // q/k/v biases must be zero (checked with the weights)
      // Dense layers: those in mlp_only_layers (decoder_sparse_step 1), or before the first MoE
      // layer with a step > 1; Tessel's first_dense and every must describe the same set.
      const int64_t step = get_size(c, "decoder_sparse_step", file, 1);
      std::vector<bool> dense(static_cast<size_t>(m.layers), false);
      if (const JsonValue* only = c.find("mlp_only_layers"); only != nullptr && only->is_array()) {
        for (const JsonValue& v : only->as_array()) {
          const int64_t i = v.as_int();
          TESSEL_CHECK(i >= 0 && i < m.layers) << file << ": mlp_only_layers holds " << i << ", not a layer index";
          dense[static_cast<size_t>(i)] = true;
        }
      }
      for (int64_t i = 0; i < m.layers; ++i)
        dense[static_cast<size_t>(i)] = dense[static_cast<size_t>(i)] || (i + 1) % step != 0;
      std::vector<int64_t> sparse;
      for (int64_t i = 0; i < m.layers; ++i) {
        if (!dense[static_cast<size_t>(i)]) sparse.push_back(i);
      }
      TESSEL_CHECK(!sparse.empty()) << file << ": every layer is dense (mlp_only_layers, decoder_sparse_step)";
      // Tessel's first_dense and every: the first MoE layer, and the gap to the next (past the
      // last layer when there is one MoE layer).
      m.moe.first_dense = sparse[0];
      m.moe.every = sparse.size() > 1 ? sparse[1] - sparse[0] : m.layers - sparse[0];
      for (int64_t i = 0; i < m.layers; ++i) {
        TESSEL_CHECK(m.moe.is_moe_layer(i) == !dense[static_cast<size_t>(i)])
            << file << ": the MoE layers (those not in mlp_only_layers, with decoder_sparse_step " << step
            << ") are not every " << m.moe.every << "-th layer from layer " << m.moe.first_dense
            << ", which is what Tessel's model.moe.first_dense and every describe";
      }
    }
  } else {
    TESSEL_FAIL() << file << ": model_type '" << type->as_string()
                  << "'; Tessel imports gpt2, llama, mixtral and qwen2_moe";
  }
  m.init_std = get_double(c, "initializer_range", 0.02);
  return m;
}

void read_hf_weights(const std::string& dir, ParameterStore& whole) {
  std::vector<std::string> files;  // paths, each checked to lie in dir
  const std::string index = contained_path(dir, "model.safetensors.index.json", dir);
  if (path_exists(index)) {
    const JsonValue j = parse_json(read_file(index, kMaxHfJsonBytes), index);
    const JsonValue* map = j.find("weight_map");
    TESSEL_CHECK(map != nullptr && map->is_object()) << index << ": no weight_map";
    for (const auto& [name, file] : map->as_object()) {
      const std::string key = index + ", weight_map[" + quote_escaped(name) + "]";
      TESSEL_CHECK(file.is_string()) << key << " is " << json_kind_name(file.kind())
                                     << "; expected the name of a .safetensors file in " << dir;
      const std::string path = contained_path(dir, file.as_string(), key);
      if (std::find(files.begin(), files.end(), path) == files.end()) files.push_back(path);
    }
  } else {
    const std::string single = contained_path(dir, "model.safetensors", dir);
    if (!path_exists(single)) {
      const std::vector<std::string> pickles = pickle_files(dir);
      TESSEL_CHECK(pickles.empty())
          << "'" << dir << "' holds pickle weights (" << pickles.front() << (pickles.size() > 1 ? ", ..." : "")
          << ") and no safetensors: Tessel never loads pickle files (.bin, .pt, .pth, .ckpt), because loading one "
          << "can execute code hidden in it; expected model.safetensors, or model.safetensors.index.json and its "
          << "shards; hint: convert the weights to safetensors where running the pickle is acceptable (transformers: "
          << "from_pretrained(DIR).save_pretrained(OUT) writes safetensors), or download the model's .safetensors "
             "files";
      TESSEL_FAIL() << "no model.safetensors or model.safetensors.index.json in '" << dir
                    << "'; hint: point at a Hugging Face model directory saved with safetensors";
    }
    files.push_back(single);
  }
  std::map<std::string, std::pair<const SafetensorsFile*, std::string>> where;  // Tessel name -> file, name there
  std::vector<std::unique_ptr<SafetensorsFile>> opened;
  for (const std::string& f : files) {
    opened.push_back(std::make_unique<SafetensorsFile>(f));
    for (const std::string& name : opened.back()->names()) {
      // GPT-2 checkpoints saved from GPT2Model drop the "transformer." prefix.
      std::string tessel_name = tessel_name_of(name);
      if (!whole.has(tessel_name) && whole.has("transformer." + name)) tessel_name = "transformer." + name;
      where[tessel_name] = {opened.back().get(), name};
    }
  }
  // Biases the model has no place for (Qwen2-MoE's q/k/v biases under model.bias false) must be
  // zero: anything else would be lost.
  for (const auto& [name, at] : where) {
    if (whole.has(name) || !ends_with(name, "_proj.bias")) continue;
    const SafetensorsFile& f = *at.first;
    const SafetensorsTensorInfo& info = f.info(at.second);
    TESSEL_CHECK(info.dtype_name == "F32" || info.dtype_name == "BF16" || info.dtype_name == "F16")
        << f.path() << ": tensor '" << info.name << "' is " << info.dtype_name << "; Tessel reads F32, BF16 and F16";
    const int64_t n = shape_numel(info.shape), width = info.dtype_name == "F32" ? 4 : 2;
    const uint8_t* raw = f.raw(info.name);
    for (int64_t i = 0; i < n * width; ++i) {
      TESSEL_CHECK(raw[i] == 0 || (width == 4 && i % 4 == 3 && raw[i] == 0x80) ||
                   (width == 2 && i % 2 == 1 && raw[i] == 0x80))
          << f.path() << ": tensor '" << info.name << "' is not zero, and the model Tessel reads has no biases "
          << "there (model.bias false); importing it would drop them";
    }
  }
  for (const ParamEntry& e : whole.entries()) {
    auto it = where.find(e.spec.name);
    TESSEL_CHECK(it != where.end()) << "'" << dir << "' has no tensor '" << e.spec.name
                                    << "' that the model its config.json describes needs";
    const SafetensorsFile& f = *it->second.first;
    const SafetensorsTensorInfo& info = f.info(it->second.second);
    TESSEL_CHECK(info.shape == e.spec.shape)
        << f.path() << ": tensor '" << info.name << "' is " << shape_str(info.shape) << " but config.json implies "
        << shape_str(e.spec.shape);
    const uint8_t* src = f.raw(info.name);
    float* dst = whole.params().data<float>() + e.offset;
    TESSEL_CHECK(info.dtype_name == "F32" || info.dtype_name == "BF16" || info.dtype_name == "F16")
        << f.path() << ": tensor '" << info.name << "' is " << info.dtype_name << "; Tessel reads F32, BF16 and F16";
    for (int64_t i = 0; i < e.numel; ++i) {
      if (info.dtype_name == "F32") {
        std::memcpy(dst + i, src + 4 * i, 4);
      } else {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = info.dtype_name == "BF16" ? bf16_to_float(h) : f16_to_float(h);
      }
    }
  }
}

}  // namespace tessel
