// Fuzz target: PNG and JPEG decoding (decode_image picks the decoder by the file's first bytes),
// then conversion to 1 and 3 channels.
#include "data/image_folder.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz_input::InputFile file("image");
  const std::string& path = file.write(fuzz_input::as_text(data, size));
  fuzz_input::expect_clean_error([&] {
    const data::HostImage image = data::decode_image(path);
    data::convert_channels(image, 1);
    data::convert_channels(image, 3);
  });
  return 0;
}
