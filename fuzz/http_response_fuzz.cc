// The response codec (what an upstream sends back) on any bytes: no crash, no leak, and
// the same events however the bytes are split.
#include "fuzz/codec_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  speedmon::fuzz::CheckSplits(speedmon::http::HttpCodec::Type::kResponse, data, size);
  return 0;
}
