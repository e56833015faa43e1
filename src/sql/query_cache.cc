#include "sql/query_cache.h"

namespace sluice::sql {

std::shared_ptr<const CheckedQuery> QueryCache::Find(const std::string& sql) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(sql);
  if (it == index_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second);
  return it->second->second;
}

void QueryCache::Put(const std::string& sql, std::shared_ptr<const CheckedQuery> query) {
  if (sql.size() > kMaxSqlBytes || capacity_ == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(sql);
  if (it != index_.end()) {
    it->second->second = std::move(query);
    order_.splice(order_.begin(), order_, it->second);
    return;
  }
  order_.emplace_front(sql, std::move(query));
  index_[sql] = order_.begin();
  if (order_.size() > capacity_) {
    index_.erase(order_.back().first);
    order_.pop_back();
  }
}

}  // namespace sluice::sql
