#pragma once
// A fixed memory budget and the page pool that draws on it. The pool hands out fixed-size slots
// carved from slabs; a slab is charged to the budget before it is allocated, so what does not fit
// is refused with a message saying how much was asked for and how much is left.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ringkv {

class MemoryBudget {
 public:
  explicit MemoryBudget(size_t capacity_bytes) : capacity_(capacity_bytes) {}
  // Throws ringkv::Error naming `purpose`, the bytes asked for, used and the capacity.
  void charge(size_t bytes, const std::string& purpose);
  void release(size_t bytes);
  size_t used() const { return used_; }
  size_t capacity() const { return capacity_; }

 private:
  size_t capacity_;
  size_t used_ = 0;
};

std::string format_bytes(size_t bytes);

class PagePool {
 public:
  PagePool(size_t slot_bytes, size_t slots_per_slab, MemoryBudget& budget, std::string name);
  ~PagePool();
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;

  uint32_t allocate();        // a free slot index, growing by one slab when none is free
  void free(uint32_t slot);
  uint8_t* data(uint32_t slot) { return slabs_[slot / slots_per_slab_].get() + (slot % slots_per_slab_) * slot_bytes_; }
  const uint8_t* data(uint32_t slot) const {
    return slabs_[slot / slots_per_slab_].get() + (slot % slots_per_slab_) * slot_bytes_;
  }
  size_t slot_bytes() const { return slot_bytes_; }
  size_t slab_bytes() const { return slot_bytes_ * slots_per_slab_; }

 private:
  size_t slot_bytes_, slots_per_slab_;
  MemoryBudget& budget_;
  std::string name_;
  std::vector<std::unique_ptr<uint8_t[]>> slabs_;
  std::vector<uint32_t> free_;
};

}  // namespace ringkv
