// A caching CPU allocator for training: large blocks are kept when tensors free them and handed out again.
//
// Why: a training step allocates and frees the same activation sizes over and over. glibc serves them from its
// heap, where freed blocks fragment (measured on bench/pretrain.py: 436 MB free but resident inside a 755 MB
// heap at the peak, for 120 MB of live activations), or, above its mmap threshold, from fresh pages that fault
// in on every step (half the step speed). This allocator does what PyTorch's CUDA allocator does: blocks of
// 1 MiB and more are rounded up to whole MiB and, once freed, wait in a pool for the next request they fit
// (at most 25 % larger than asked); smaller requests go to the system allocator. Pooled memory is never
// faulted in twice and the pool stays near the step's peak of live tensors. Used from Python through
// bertkit/training/caching_allocator.py (ctypes), which compiles this file on first use.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <cstddef>
#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>

namespace {

constexpr size_t kMinPooled = size_t(1) << 20;  // smaller blocks go straight to the system allocator
constexpr size_t kRounding = size_t(1) << 20;   // pooled sizes are whole MiB
constexpr size_t kMaxSlackPercent = 25;         // a free block serves requests down to 1/1.25 of its size
constexpr size_t kAlignment = 64;               // as torch's default CPU allocator (AVX-512 loads)

void* system_alloc(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  void* data = nullptr;
  if (posix_memalign(&data, kAlignment, nbytes) != 0 || data == nullptr) {
    TORCH_CHECK_WITH(OutOfMemoryError, false, "caching CPU allocator: out of memory allocating ", nbytes, " bytes");
  }
  return data;
}

class CachingCPUAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t nbytes) override {
    void* data = nbytes < kMinPooled ? system_alloc(nbytes) : take(nbytes);
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  // Gives every free pooled block back to the system.
  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, block] : free_) {
      block_size_.erase(block);
      pooled_bytes_ -= size;
      std::free(block);
    }
    free_.clear();
  }

  size_t pooled_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return pooled_bytes_;
  }

  void set_installed(bool installed) {
    std::lock_guard<std::mutex> lock(mutex_);
    installed_ = installed;
  }

  static CachingCPUAllocator& instance() {
    static auto* allocator = new CachingCPUAllocator();  // never destroyed: tensors may outlive everything
    return *allocator;
  }

 private:
  void* take(size_t nbytes) {
    const size_t size = (nbytes + kRounding - 1) / kRounding * kRounding;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.lower_bound(size);  // the smallest free block that fits
      if (it != free_.end() && it->first * 100 <= size * (100 + kMaxSlackPercent)) {
        void* block = it->second;
        free_.erase(it);
        return block;
      }
    }
    void* block = system_alloc(size);
    std::lock_guard<std::mutex> lock(mutex_);
    block_size_[block] = size;
    pooled_bytes_ += size;
    return block;
  }

  static void release(void* data) {
    if (data == nullptr) return;
    auto& self = instance();
    {
      std::lock_guard<std::mutex> lock(self.mutex_);
      auto it = self.block_size_.find(data);
      if (it != self.block_size_.end()) {
        if (self.installed_) {
          self.free_.emplace(it->second, data);
          return;
        }
        self.pooled_bytes_ -= it->second;  // uninstalled: blocks still in use go back to the system
        self.block_size_.erase(it);
      }
    }
    std::free(data);  // a small block, or a pooled one after uninstall
  }

  std::mutex mutex_;
  std::multimap<size_t, void*> free_;            // size → free pooled block
  std::unordered_map<void*, size_t> block_size_;  // every pooled block, in use or free
  size_t pooled_bytes_ = 0;
  bool installed_ = false;
};

c10::Allocator* previous = nullptr;

}  // namespace

extern "C" {

// Makes the caching allocator torch's CPU allocator; returns 1 when it took effect.
int bertkit_install() {
  auto* caching = &CachingCPUAllocator::instance();
  if (c10::GetCPUAllocator() == caching) return 1;
  previous = c10::GetCPUAllocator();
  caching->set_installed(true);
  c10::SetCPUAllocator(caching);
  if (c10::GetCPUAllocator() == caching) return 1;
  caching->set_installed(false);  // another allocator holds a higher priority
  return 0;
}

// Restores the allocator that was there before and frees the pool's free blocks; blocks still in use stay valid
// and go back to the system when their tensors free them.
void bertkit_uninstall() {
  auto* caching = &CachingCPUAllocator::instance();
  if (previous != nullptr && c10::GetCPUAllocator() == caching) {
    c10::SetCPUAllocator(previous);
    caching->set_installed(false);
    caching->empty_cache();
  }
}

int bertkit_installed() { return c10::GetCPUAllocator() == &CachingCPUAllocator::instance() ? 1 : 0; }

void bertkit_empty_cache() { CachingCPUAllocator::instance().empty_cache(); }

size_t bertkit_pooled_bytes() { return CachingCPUAllocator::instance().pooled_bytes(); }
}
