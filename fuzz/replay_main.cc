// Replay main for builds without libFuzzer (gcc, asan, tsan, ubsan, debug, release, aarch64):
// runs LLVMFuzzerTestOneInput once on the empty input, then on every file named on the command
// line and every file under every directory named there (in name order). Arguments starting with
// '-' are libFuzzer flags and are ignored, so both binaries take the same command line. Each input
// runs in a child process of its own, so one crashing input does not hide the next: every failing
// file is named at the end. Exits 1 if any input failed or none was found (a wrong corpus path
// must not pass silently).
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

void CollectFiles(const std::string& path, std::vector<std::string>* files) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    fprintf(stderr, "replay: cannot stat %s\n", path.c_str());
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    files->push_back(path);
    return;
  }
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) {
    fprintf(stderr, "replay: cannot open directory %s\n", path.c_str());
    return;
  }
  std::vector<std::string> names;
  while (dirent* entry = readdir(dir)) {
    if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
      names.push_back(entry->d_name);
    }
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) CollectFiles(path + "/" + name, files);
}

// Runs one input from a buffer of exactly its size, so ASan sees reads past the end.
void RunOne(const std::vector<char>& bytes) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size() ? bytes.size() : 1]);
  std::copy(bytes.begin(), bytes.end(), copy.get());
  LLVMFuzzerTestOneInput(copy.get(), bytes.size());
}

// Runs one input in a child process; false (and a line on stderr) if it crashed or exited non-zero.
bool RunInChild(const std::string& name, const std::vector<char>& bytes) {
  fprintf(stderr, "replay: %s (%zu bytes)\n", name.c_str(), bytes.size());
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    perror("replay: fork");
    return false;
  }
  if (pid == 0) {
    RunOne(bytes);
    fflush(stderr);
    _exit(0);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) {
    perror("replay: waitpid");
    return false;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "replay: %s killed by signal %d (%s)\n", name.c_str(), WTERMSIG(status),
            strsignal(WTERMSIG(status)));
  } else {
    fprintf(stderr, "replay: %s exited with status %d\n", name.c_str(), WEXITSTATUS(status));
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<std::string> files;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] != '-') CollectFiles(argv[i], &files);
  }
  std::vector<std::string> failed;
  if (!RunInChild("(empty input)", {})) failed.push_back("(empty input)");
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      fprintf(stderr, "replay: cannot read %s\n", file.c_str());
      failed.push_back(file);
      continue;
    }
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!RunInChild(file, bytes)) failed.push_back(file);
  }
  fprintf(stderr, "replay: %zu of %zu input(s) passed\n", files.size() + 1 - failed.size(),
          files.size() + 1);
  for (const std::string& file : failed) fprintf(stderr, "replay: FAILED %s\n", file.c_str());
  if (files.empty()) {
    fprintf(stderr, "replay: no input files found\n");
    return 1;
  }
  return failed.empty() ? 0 : 1;
}
