// Linked into every executable of the sanitizer build (FERRY_SANITIZE,
// scripts/test-sanitize). These are the options the sanitizer runtimes start
// from before they read ASAN_OPTIONS / UBSAN_OPTIONS / LSAN_OPTIONS. They
// matter for the processes that never see the test's environment: sshd runs
// ferry-login and the authorized-keys helper with a clean one. Those
// processes must still stop at their first finding, check for leaks at exit,
// and write the report where scripts/test-sanitize looks for it, in a file
// named after the program (log_exe_name). To see a report on the terminal
// instead, run a binary with ASAN_OPTIONS=log_path=stderr.
//
// FERRY_SANITIZER_LOG_DIR and FERRY_SANITIZER_SUPPRESSIONS are set by
// CMakeLists.txt for this file only.

#define FERRY_SANITIZER_COMMON "halt_on_error=1:log_exe_name=1:log_path=" FERRY_SANITIZER_LOG_DIR

extern "C" {

__attribute__((visibility("default"), used)) const char* __asan_default_options()
{
    return FERRY_SANITIZER_COMMON "/asan:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
                                  ":suppressions=" FERRY_SANITIZER_SUPPRESSIONS "/asan.supp";
}

__attribute__((visibility("default"), used)) const char* __ubsan_default_options()
{
    return FERRY_SANITIZER_COMMON "/ubsan:print_stacktrace=1:suppressions=" FERRY_SANITIZER_SUPPRESSIONS "/ubsan.supp";
}

__attribute__((visibility("default"), used)) const char* __lsan_default_options()
{
    return "suppressions=" FERRY_SANITIZER_SUPPRESSIONS "/lsan.supp:print_suppressions=0";
}
}
