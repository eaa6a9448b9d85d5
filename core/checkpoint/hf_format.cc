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
  // Shards in parameter order, each up to max_shard_bytes (a larger tensor gets one of its own).
  std::vector<std::vector<const ParamEntry*>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (const ParamEntry& e : whole.entries()) {
    const uint64_t bytes = static_cast<uint64_t>(e.numel) * sizeof(float);
    if (in_shard > 0 && in_shard + bytes > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(&e);
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
    for (const ParamEntry* e : shards[k]) {
      w.add(e->spec.name, whole.param(e->spec.name));
      weight_map.emplace_back(e->spec.name, JsonValue::string(name));
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
  } else if (type->as_string() == "llama") {
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
  } else {
    TESSEL_FAIL() << file << ": model_type '" << type->as_string() << "'; Tessel imports gpt2 and llama";
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
      const std::string tessel_name =
          whole.has(name) || !whole.has("transformer." + name) ? name : "transformer." + name;
      where[tessel_name] = {opened.back().get(), name};
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
