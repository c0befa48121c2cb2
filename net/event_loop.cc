#include "net/event_loop.h"

#include <pthread.h>
#include <uv.h>

#include <atomic>
#include <string>

namespace quid::net {

struct EventLoop::Impl {
  uv_loop_t loop{};
  uv_async_t wakeup{};
  std::thread thread;
  std::atomic<std::thread::id> thread_id{};
  std::string name;

  // Guards `queue` and `stopping`. uv_async_send is called with it held so that no
  // thread can wake the handle after the loop thread has seen `stopping` and closed it.
  std::mutex mu;
  std::vector<std::function<void()>> queue;
  bool stopping = false;
};

namespace {

void CloseAny(uv_handle_t* handle, void*) {
  if (!uv_is_closing(handle)) uv_close(handle, nullptr);
}

}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::Start(const char* name) {
  std::unique_ptr<EventLoop> self(new EventLoop());
  self->impl_ = std::make_unique<Impl>();
  Impl* impl = self->impl_.get();
  impl->name = name;
  int rc = uv_loop_init(&impl->loop);
  if (rc != 0) return Status::IoError(std::string("uv_loop_init: ") + uv_strerror(rc));
  impl->wakeup.data = impl;
  rc = uv_async_init(&impl->loop, &impl->wakeup, [](uv_async_t* async) {
    auto* impl = static_cast<Impl*>(async->data);
    std::vector<std::function<void()>> work;
    bool stopping;
    {
      std::lock_guard lock(impl->mu);
      work.swap(impl->queue);
      stopping = impl->stopping;
    }
    for (auto& fn : work) fn();
    // Closing every handle (ours and whatever owners left open) lets uv_run return.
    if (stopping) uv_walk(async->loop, CloseAny, nullptr);
  });
  if (rc != 0) {
    (void)uv_loop_close(&impl->loop);
    return Status::IoError(std::string("uv_async_init: ") + uv_strerror(rc));
  }
  impl->thread = std::thread([impl] {
    // Shows in top and gdb; Linux caps names at 15 characters.
    pthread_setname_np(pthread_self(), impl->name.substr(0, 15).c_str());
    uv_run(&impl->loop, UV_RUN_DEFAULT);
  });
  // Known before Start returns, so InLoopThread is right for every later caller.
  impl->thread_id.store(impl->thread.get_id());
  return self;
}

EventLoop::~EventLoop() {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    uv_async_send(&impl_->wakeup);
  }
  impl_->thread.join();
  // Close callbacks already ran inside uv_run; anything still registered is a bug in an
  // owner, and uv_loop_close would report UV_EBUSY: run once more to settle it.
  if (uv_loop_close(&impl_->loop) == UV_EBUSY) {
    uv_walk(&impl_->loop, CloseAny, nullptr);
    uv_run(&impl_->loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&impl_->loop);
  }
}

void EventLoop::Post(std::function<void()> fn) {
  std::lock_guard lock(impl_->mu);
  if (impl_->stopping) return;
  impl_->queue.push_back(std::move(fn));
  uv_async_send(&impl_->wakeup);
}

bool EventLoop::InLoopThread() const {
  return std::this_thread::get_id() == impl_->thread_id.load();
}

uv_loop_s* EventLoop::loop() {
  return &impl_->loop;
}

}  // namespace quid::net
