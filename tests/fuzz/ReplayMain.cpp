// A main() for the fuzz targets when libFuzzer is not there (g++ builds):
// runs LLVMFuzzerTestOneInput once over every file named on the command line
// or found in a directory named there. A crash or a sanitizer report fails
// the run, like libFuzzer's own replay of a corpus.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::size_t replay(const std::filesystem::path& file)
{
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    return 1;
}

} // namespace

int main(int argc, char* argv[])
{
    std::size_t inputs = 0;
    for (int i = 1; i < argc; ++i) {
        const std::filesystem::path p = argv[i];
        if (std::filesystem::is_directory(p)) {
            std::vector<std::filesystem::path> files;
            for (const auto& e : std::filesystem::recursive_directory_iterator(p))
                if (e.is_regular_file())
                    files.push_back(e.path());
            std::sort(files.begin(), files.end());
            for (const auto& f : files)
                inputs += replay(f);
        } else {
            inputs += replay(p);
        }
    }
    if (inputs == 0) {
        std::fprintf(stderr, "no inputs found in the arguments\n");
        return 1;
    }
    std::printf("replayed %zu inputs\n", inputs);
    return 0;
}
