#include "kvstore/memory_budget.hpp"

#include <cstdio>

#include "kernels/error.hpp"

namespace ringkv {

std::string format_bytes(size_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  else if (b >= 1024.0 * 1024) std::snprintf(buf, sizeof buf, "%.2f MiB", b / (1024.0 * 1024));
  else if (b >= 1024.0) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%zu B", bytes);
  return buf;
}

void MemoryBudget::charge(size_t bytes, const std::string& purpose) {
  RINGKV_REQUIRE(bytes <= capacity_ - used_, "out of KV memory: " + purpose + " needs " + format_bytes(bytes) + " but " +
                                                 format_bytes(used_) + " of the " + format_bytes(capacity_) +
                                                 " budget is in use; raise the budget, use more ranks or a smaller codec");
  used_ += bytes;
}

void MemoryBudget::release(size_t bytes) { used_ -= std::min(bytes, used_); }

PagePool::PagePool(size_t slot_bytes, size_t slots_per_slab, MemoryBudget& budget, std::string name)
    : slot_bytes_(slot_bytes), slots_per_slab_(slots_per_slab), budget_(budget), name_(std::move(name)) {
  RINGKV_REQUIRE(slot_bytes_ > 0 && slots_per_slab_ > 0, "page pool " + name_ + " needs non-empty slots and slabs");
}

PagePool::~PagePool() { budget_.release(slabs_.size() * slab_bytes()); }

uint32_t PagePool::allocate() {
  if (free_.empty()) {
    budget_.charge(slab_bytes(), "a slab of " + std::to_string(slots_per_slab_) + " " + name_ + " pages");
    slabs_.push_back(std::make_unique<uint8_t[]>(slab_bytes()));
    const uint32_t first = static_cast<uint32_t>((slabs_.size() - 1) * slots_per_slab_);
    for (size_t i = slots_per_slab_; i-- > 0;) free_.push_back(first + static_cast<uint32_t>(i));
  }
  const uint32_t slot = free_.back();
  free_.pop_back();
  return slot;
}

void PagePool::free(uint32_t slot) { free_.push_back(slot); }

}  // namespace ringkv
