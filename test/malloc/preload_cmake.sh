#!/usr/bin/env bash
# The C++ toolchain and a C++ program, all under the preload: cmake (C++, operator new/delete
# through libstdc++) configures a small project, make -j2 builds it (cc1plus instantiating <map>,
# <variant>, <functional>, <future>, <memory_resource>), and the program runs: containers that
# grow and shrink, strings and streams, over-aligned new/delete (operator new(size_t, align_val_t)),
# new[]/delete[], nothrow and failing new (std::bad_alloc), pmr resources, and four threads handing
# unique_ptr/shared_ptr objects to each other (freed by a thread that did not allocate them).
# Compared: cmake's messages, the objects (code only) and the program's output.
source "$(dirname "$0")/preload_common.sh"
need cmake make g++ md5sum objcopy
N=${HK_CXX_N:-200000}
mkdir -p "$TMP/src"
cat > "$TMP/src/CMakeLists.txt" <<'EOC'
cmake_minimum_required(VERSION 3.13)
project(hkcxx CXX)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
find_package(Threads REQUIRED)
include(CheckIncludeFileCXX)
check_include_file_cxx(memory_resource HAVE_MEMORY_RESOURCE)
if(NOT HAVE_MEMORY_RESOURCE)
  message(FATAL_ERROR "no <memory_resource>")
endif()
add_executable(prog main.cc containers.cc text.cc threads.cc aligned.cc)
target_link_libraries(prog PRIVATE Threads::Threads)
EOC
cat > "$TMP/src/common.h" <<'EOC'
#pragma once
#include <cstdint>
#include <string>
// FNV-1a: a checksum of what each part computed, printed and compared between the two runs.
struct Sum {
  std::uint64_t h = 1469598103934665603ull;
  void add(std::uint64_t v) { for (int i = 0; i < 8; i++) { h ^= (v >> (8 * i)) & 0xff; h *= 1099511628211ull; } }
  void add(const std::string &s) { for (unsigned char c : s) { h ^= c; h *= 1099511628211ull; } add(s.size()); }
};
std::string containers(long n);
std::string text(long n);
std::string threads(long n);
std::string aligned(long n);
EOC
cat > "$TMP/src/main.cc" <<'EOC'
#include "common.h"
#include <cstdio>
#include <cstdlib>
int main(int argc, char **argv) {
  long n = argc > 1 ? std::atol(argv[1]) : 100000;
  std::printf("containers %s\n", containers(n).c_str());
  std::printf("text %s\n", text(n / 4).c_str());
  std::printf("threads %s\n", threads(n).c_str());
  std::printf("aligned %s\n", aligned(n / 10).c_str());
  return 0;
}
EOC
cat > "$TMP/src/containers.cc" <<'EOC'
#include "common.h"
#include <algorithm>
#include <deque>
#include <list>
#include <map>
#include <set>
#include <unordered_map>
#include <variant>
#include <vector>
#include <functional>
using Value = std::variant<long, std::string, std::vector<int>>;
std::string containers(long n) {
  Sum s;
  std::map<std::string, std::vector<int>> m;
  std::unordered_map<long, Value> u;
  std::set<std::string> names;
  std::list<std::string> l;
  std::deque<std::function<long(long)>> fs;
  for (long i = 0; i < n; i++) {
    std::string k = "key" + std::to_string(i * 7919 % (n / 3 + 1));
    auto &v = m[k];
    v.push_back(int(i));
    if (v.size() > 40) v.erase(v.begin(), v.begin() + 20);
    switch (i % 3) {
      case 0: u[i % 5003] = Value(i); break;
      case 1: u[i % 5003] = Value(std::string(std::size_t(i % 300), char('a' + i % 26))); break;
      default: u[i % 5003] = Value(std::vector<int>(std::size_t(i % 100), int(i))); break;
    }
    if (i % 4 == 0) names.insert(k + "/" + std::to_string(i % 1000));
    l.push_back(k);
    if (l.size() > 10000) l.pop_front();
    fs.emplace_back([k, i](long x) { return long(k.size()) + x + i % 7; });
    if (fs.size() > 1000) { s.add(std::uint64_t(fs.front()(i))); fs.pop_front(); }
  }
  for (auto &kv : m) { s.add(kv.first); for (int x : kv.second) s.add(std::uint64_t(x)); }
  std::vector<long> keys;
  for (auto &kv : u) keys.push_back(kv.first);
  std::sort(keys.begin(), keys.end());
  for (long k : keys) {
    std::visit([&s](auto &&x) {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, long>) s.add(std::uint64_t(x));
      else if constexpr (std::is_same_v<T, std::string>) s.add(x);
      else s.add(x.size());
    }, u[k]);
  }
  for (auto &x : names) s.add(x);
  for (auto &x : l) s.add(x);
  std::vector<std::string> big(names.begin(), names.end());
  std::stable_sort(big.begin(), big.end(), [](const std::string &a, const std::string &b) { return a.size() < b.size(); });
  s.add(big.front()); s.add(big.back());
  return std::to_string(m.size()) + " " + std::to_string(names.size()) + " " + std::to_string(s.h);
}
EOC
cat > "$TMP/src/text.cc" <<'EOC'
#include "common.h"
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <vector>
// Streams and strings: one big string built by an ostringstream, split into words, each word
// parsed into key and value, values grouped by key, strings joined and cleared (with shrink).
std::string text(long n) {
  std::ostringstream os;
  for (long i = 0; i < n; i++)
    os << "id=" << i << " name=user" << (i * 31 % 997) << " mail=u" << i % 97 << "@host" << i % 13 << ".example ; ";
  std::string all = os.str();
  Sum s;
  std::istringstream is(all);
  std::vector<std::string> words;
  std::unordered_map<std::string, std::vector<std::string>> by_key;
  for (std::string w; is >> w;) {
    std::string_view v(w);
    auto eq = v.find('=');
    if (eq != std::string_view::npos) {
      auto &vals = by_key[std::string(v.substr(0, eq))];
      vals.emplace_back(v.substr(eq + 1));
      if (vals.size() > 5000) { for (auto &x : vals) s.add(x); vals.clear(); vals.shrink_to_fit(); }
    }
    words.push_back(std::move(w));
  }
  std::string joined;
  for (auto &w : words) {
    joined += w;
    if (joined.size() > 100000) { s.add(joined); joined.clear(); joined.shrink_to_fit(); }
  }
  std::string replaced;
  for (std::size_t pos = 0, at; pos < all.size() / 4; pos = at + 5) {
    at = all.find("@host", pos);
    if (at == std::string::npos) break;
    replaced.append(all, pos, at - pos).append("@h");
  }
  s.add(replaced);
  return std::to_string(all.size()) + " " + std::to_string(by_key.size()) + " " + std::to_string(words.size()) + " " + std::to_string(s.h);
}
EOC
cat > "$TMP/src/threads.cc" <<'EOC'
#include "common.h"
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>
// Two producers allocate, two consumers free: every object dies in a thread that did not create it.
struct Item { long id; std::string payload; std::shared_ptr<std::vector<long>> shared; };
std::string threads(long n) {
  std::mutex mu; std::condition_variable cv;
  std::queue<std::unique_ptr<Item>> q;
  auto shared = std::make_shared<std::vector<long>>(1000, 7);
  int producers_left = 2;
  auto produce = [&](int t) {
    for (long i = t; i < n; i += 2) {
      auto it = std::make_unique<Item>(Item{i, std::string(std::size_t(i % 700), char('A' + i % 26)), shared});
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return q.size() < 4096; });
      q.push(std::move(it));
      cv.notify_all();
    }
    std::lock_guard<std::mutex> lk(mu);
    producers_left--;
    cv.notify_all();
  };
  auto consume = [&]() {
    std::uint64_t sum = 0;
    std::vector<std::unique_ptr<Item>> held;
    for (;;) {
      std::unique_ptr<Item> it;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return !q.empty() || producers_left == 0; });
        if (q.empty()) break;
        it = std::move(q.front()); q.pop();
        cv.notify_all();
      }
      sum += std::uint64_t(it->id) + it->payload.size() + it->shared->size();
      held.push_back(std::move(it));
      if (held.size() > 300) held.erase(held.begin(), held.begin() + 150);
    }
    return sum;
  };
  std::thread p0(produce, 0), p1(produce, 1);
  auto c0 = std::async(std::launch::async, consume), c1 = std::async(std::launch::async, consume);
  p0.join(); p1.join();
  std::uint64_t total = c0.get() + c1.get();
  return std::to_string(total) + " shared_use " + std::to_string(shared.use_count());
}
EOC
cat > "$TMP/src/aligned.cc" <<'EOC'
#include "common.h"
#include <cstdint>
#include <limits>
#include <memory_resource>
#include <new>
#include <vector>
struct alignas(64) A64 { char c[40]; };
struct alignas(256) A256 { char c[300]; };
struct alignas(4096) A4K { char c[5000]; };
static void *volatile sink;
template <class T> static bool ok(const T *p) { return reinterpret_cast<std::uintptr_t>(p) % alignof(T) == 0; }
std::string aligned(long n) {
  long bad = 0; Sum s;
  std::vector<A64 *> a; std::vector<A256 *> b; std::vector<A4K *> c;
  for (long i = 0; i < n; i++) {
    a.push_back(new A64()); b.push_back(new A256[1 + i % 5]);
    if (i % 50 == 0) c.push_back(new A4K());
    bad += !ok(a.back()) + !ok(b.back()) + (c.empty() ? 0 : !ok(c.back()));
    if (i % 3 == 0) { delete a[a.size() / 2]; a[a.size() / 2] = new A64(); }
  }
  for (auto p : a) delete p;
  for (auto p : b) delete[] p;
  for (auto p : c) delete p;
  std::vector<char *> raw;
  for (long i = 0; i < n; i++) { raw.push_back(new char[std::size_t(1 + i * 37 % 20000)]); if (i % 2) { delete[] raw[std::size_t(i / 2)]; raw[std::size_t(i / 2)] = nullptr; } }
  for (auto p : raw) delete[] p;
  // Failing requests: nothrow new gives null, plain new throws.
  void *nt = sink = ::operator new(std::numeric_limits<std::size_t>::max() / 2, std::nothrow);
  void *nta = sink = ::operator new(std::numeric_limits<std::size_t>::max() / 2, std::align_val_t(128), std::nothrow);
  // (through a volatile pointer: the compiler may remove a new/delete pair it can see)
  int threw = 0;
  try { sink = new char[std::numeric_limits<std::size_t>::max() / 4]; delete[] static_cast<char *>(sink); } catch (const std::bad_alloc &) { threw++; }
  try { sink = ::operator new(std::size_t(1) << 62, std::align_val_t(4096)); ::operator delete(sink, std::align_val_t(4096)); } catch (const std::bad_alloc &) { threw++; }
  // pmr: a monotonic buffer over the aligned global new, a pool over that.
  std::pmr::monotonic_buffer_resource mono(1 << 16);
  std::pmr::unsynchronized_pool_resource pool(&mono);
  {
    std::pmr::vector<std::pmr::string> v(&pool);
    for (long i = 0; i < n; i++) { v.emplace_back(std::size_t(i % 90), char('a' + i % 26)); if (v.size() > 2000) v.erase(v.begin(), v.begin() + 1000); }
    for (auto &x : v) s.add(std::string(x));
  }
  for (long i = 0; i < n / 10; i++) {
    void *p = std::pmr::new_delete_resource()->allocate(std::size_t(16 + i % 4000), std::size_t(1) << (i % 13));
    bad += reinterpret_cast<std::uintptr_t>(p) % (std::size_t(1) << (i % 13)) != 0;
    std::pmr::new_delete_resource()->deallocate(p, std::size_t(16 + i % 4000), std::size_t(1) << (i % 13));
  }
  return "misaligned " + std::to_string(bad) + " nothrow_null " + std::to_string((nt == nullptr) + (nta == nullptr)) +
         " bad_alloc " + std::to_string(threw) + " pmr " + std::to_string(s.h);
}
EOC
cat > "$TMP/work.sh" <<EOS
set -e
cmake -S "$TMP/src" -B b -DCMAKE_CXX_FLAGS=-O1 2>&1 | grep -vE '^-- (Configuring|Generating) done|^-- Build files'
make -C b -j2 >make.log 2>&1 || { cat make.log; exit 1; }
for f in b/CMakeFiles/prog.dir/*.o; do objcopy --strip-debug "\$f" "\$f.s"; echo "\$(md5sum < "\$f.s") \$(basename "\$f")"; done
b/prog $N
EOS
run_compare cmake cm bash "$TMP/work.sh"
echo "$name: ok"
