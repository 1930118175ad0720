#pragma once
// Helpers shared by the engine's stages (internal to src/explore).
#include <cstddef>
#include <functional>
#include <string>

namespace tokmap::explore {

// Runs job(0..count-1) on up to `threads` threads (the calling thread is one of them) and calls
// `tick` on the calling thread after each of its jobs. The first exception is rethrown.
void run_parallel(std::size_t count, int threads, const std::function<void(std::size_t)>& job,
                  const std::function<void()>& tick = {});
// `threads`, or every core when it is 0.
int core_count(int threads);
std::string format(const char* pattern, double value);

}  // namespace tokmap::explore
