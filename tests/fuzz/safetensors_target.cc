// A .safetensors file: the header is validated on open; then every tensor is read back.
#include "core/error.h"
#include "core/io/safetensors.h"
#include "tests/fuzz/target.h"

namespace tessel::fuzz {

void fuzz_safetensors(std::string_view data) {
  const std::string path = scratch_file("fuzz.safetensors", data);
  try {
    SafetensorsFile f(path);
    for (const std::string& name : f.names()) {
      const SafetensorsTensorInfo& info = f.info(name);
      if (info.end < info.begin || info.end - info.begin > data.size())
        throw FuzzPropertyFailed("tensor '" + name + "' accepted with a byte range outside the file");
      if (info.dtype) f.get(name);
      f.raw(name);
    }
  } catch (const Error&) {
  }
}

}  // namespace tessel::fuzz
