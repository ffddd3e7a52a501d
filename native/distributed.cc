// torch.distributed on libtorch's own c10d: TCPStore rendezvous, ProcessGroupGloo
// (ProcessGroupNCCL where the libtorch has it), collectives (sync, or a promise
// resolved by waiting on the c10d Work on a libuv worker), and DDP's engine,
// c10d::Reducer, which hooks libtorch's autograd directly.
//
// Stores and groups are laid out as the Python torch of the same libtorch
// version lays them out (init_process_group, new_group), so a Python rank can
// join the same group. Group names are "0", "1", ... in creation order, under
// PrefixStore("default_pg", tcpStore). On 1.13 a group's store is
// PrefixStore(<name>) and every creation ends with the store-based barrier on
// "store_based_barrier_key:<count>" and setSequenceNumberForGroup(). On 2.x the
// group is a front over its backend: PrefixStore("<name>/") for the group,
// PrefixStore("<device>/") inside it for the backend, the sequence number set
// on the backend, and the barrier only where TORCH_DIST_INIT_BARRIER=1
// (torch_compat.h says which version does what).
//
// Compiled with VGG_TORCH_WITH_GLOO only where the Gloo headers were found; otherwise
// only distIsAvailable() (false) is exported and lib/distributed says what to install.
#include "tensor.h"
#include "torch_compat.h"

#ifdef VGG_TORCH_WITH_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/default_comm_hooks.hpp>
#include <torch/csrc/distributed/c10d/logger.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#ifdef VGG_TORCH_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <ATen/CPUGeneratorImpl.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#endif

namespace vggtorch {

namespace {

Napi::Value IsAvailable(const Napi::CallbackInfo& info) {
#ifdef VGG_TORCH_WITH_GLOO
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Value NcclAvailable(const Napi::CallbackInfo& info) {
#ifdef VGG_TORCH_WITH_NCCL
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

#ifdef VGG_TORCH_WITH_GLOO

using Group = c10::intrusive_ptr<c10d::ProcessGroup>;

// The process's default group and its store. One per process, as in Python
// (the addon may be loaded by several worker threads; only one may initialise).
struct World {
  std::mutex mutex;
  c10::intrusive_ptr<c10d::Store> store;  // PrefixStore("default_pg", tcpStore)
  // The store new groups are made in, and their barrier runs on: Python's
  // pg_map entry of the default group (its own prefix store on 2.x).
  c10::intrusive_ptr<c10d::Store> groupStore;
  std::vector<Group> groups;  // by id; null for a group this rank is not in
  int64_t groupCount = 0;     // Python's _group_count
  int rank = -1;
  int worldSize = 0;
  std::string backend;
  std::string host;
  std::chrono::milliseconds timeout{0};
  // Set once a collective timed out: the store (on rank 0's host) may be unreachable too, and
  // every request to it would wait out the timeout again.
  bool storeDoubtful = false;
  std::vector<std::shared_ptr<c10d::Reducer>> reducers;  // by id; null once freed
  std::vector<std::shared_ptr<c10d::Logger>> loggers;    // the Reducer holds its Logger weakly
};

World& TheWorld() {
  static World* w = new World();  // never destroyed: Gloo threads may outlive static destructors
  return *w;
}

bool IsLoopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1"; }

std::shared_ptr<::gloo::transport::Device> GlooDevice(const std::string& host) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
    if (*ifname) return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  }
  // All ranks on this machine: talk over loopback. Otherwise the address the
  // hostname resolves to, as Python's default device.
  if (IsLoopback(host)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

std::string BarrierTimeout(const World& w, const std::string& key, int64_t count) {
  return "timed out initializing the process group in the store-based barrier on rank " + std::to_string(w.rank) +
         " (key " + key + ", world size " + std::to_string(w.worldSize) + ", " + std::to_string(count) +
         " ranks arrived)";
}

// Python's _store_based_barrier on `store` after creating group `name`
// (groupCount groups made so far, this one included), bounded by the group
// timeout. Where Python runs it: always before 2.1, keyed by the count; since,
// only with TORCH_DIST_INIT_BARRIER=1, keyed by the name, with a last_worker key.
void StoreBarrier(World& w, const c10::intrusive_ptr<c10d::Store>& store, const std::string& name) {
#if VGG_TORCH_C10D_BARRIER_OPT_IN
  const char* env = std::getenv("TORCH_DIST_INIT_BARRIER");
  if (!env || std::string(env) != "1") return;
  std::string key = "store_based_barrier_key:" + name;
  std::string last = key + ":last_worker";
  store->add(key, 1);
  if (store->add(key, 0) == w.worldSize) store->set(last, std::vector<uint8_t>{'1'});
  try {
    store->wait({last}, w.timeout);
  } catch (const std::exception&) {
    throw NativeError(BarrierTimeout(w, key, store->add(key, 0)));
  }
#else
  (void)name;
  std::string key = "store_based_barrier_key:" + std::to_string(w.groupCount);
  store->add(key, 1);
  auto start = std::chrono::steady_clock::now();
  int64_t count = store->add(key, 0);
  while (count != w.worldSize) {
    if (std::chrono::steady_clock::now() - start > w.timeout) throw NativeError(BarrierTimeout(w, key, count));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    count = store->add(key, 0);
  }
#endif
}

// After the barrier (1.13): agree on the group's first sequence number. On 2.x
// the backend did so as it was made.
void SetSequenceNumber(const Group& pg) {
#if !VGG_TORCH_C10D_BACKENDS
  pg->setSequenceNumberForGroup();
#endif
}

// Group `name` in `parent` (the default group in "default_pg", the others in
// the default group's store).
Group MakeGroup(World& w, const c10::intrusive_ptr<c10d::Store>& parent, const std::string& name, int rank, int size) {
#if VGG_TORCH_C10D_BACKENDS
  using Type = c10d::ProcessGroup::BackendType;
  auto store = c10::make_intrusive<c10d::PrefixStore>(name + "/", parent);
#ifdef VGG_TORCH_WITH_NCCL
  if (w.backend == "nccl") {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = w.timeout;
    auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("cuda/", store),
                                                            rank, size, opts);
#if VGG_TORCH_C10D_SEQUENCE_NUMBERS
    nccl->setSequenceNumberForGroup();
#endif
    return compat::GroupOver(store, rank, size, Type::NCCL, "nccl", nccl, {c10::kCUDA}, w.timeout, name);
  }
#endif
  auto opts = c10d::ProcessGroupGloo::Options::create(w.timeout);
  opts->devices.push_back(GlooDevice(w.host));
  // Python's BackendConfig("gloo") maps cpu then cuda to Gloo: the backend's store is "cpu/".
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("cpu/", store), rank,
                                                          size, opts);
#if VGG_TORCH_C10D_SEQUENCE_NUMBERS
  gloo->setSequenceNumberForGroup();
#endif
  return compat::GroupOver(store, rank, size, Type::GLOO, "gloo", gloo, {c10::kCPU, c10::kCUDA}, w.timeout, name);
#else
  auto store = c10::make_intrusive<c10d::PrefixStore>(name, parent);
#ifdef VGG_TORCH_WITH_NCCL
  if (w.backend == "nccl") {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = w.timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, opts);
  }
#endif
  auto opts = c10d::ProcessGroupGloo::Options::create(w.timeout);
  opts->devices.push_back(GlooDevice(w.host));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, opts);
#endif
}

// The TCPStore. Where this libtorch has the libuv server option, it is used as
// Python uses it (USE_LIBUV, on unless "0"), and left off where this libtorch
// was built without libuv (Debian's), unless USE_LIBUV=1 asked for it.
c10::intrusive_ptr<c10d::Store> MakeStore(const std::string& host, c10d::TCPStoreOptions o) {
#if VGG_TORCH_C10D_STORE_LIBUV
  const char* env = std::getenv("USE_LIBUV");
  std::string want = env ? env : "";
  o.useLibUV = want != "0";
  if (o.useLibUV) {
    try {
      return c10::make_intrusive<c10d::TCPStore>(host, o);
    } catch (const c10::Error& e) {
      std::string msg = e.what_without_backtrace();
      if (msg.find("libuv") == std::string::npos || want == "1") throw;
      o.useLibUV = false;  // built without libuv: the classic server
    }
  }
#endif
  return c10::make_intrusive<c10d::TCPStore>(host, o);
}

// A rank's exit code, written to the store as the process exits (see MarkExit),
// so that a collective failing on another rank can say which rank went away.
std::string ExitKey(int rank) { return "vgg_torch_exit/" + std::to_string(rank); }
// A rank's host addresses, written at init: Gloo's errors name the peer only by address.
std::string AddrKey(int rank) { return "vgg_torch_addrs/" + std::to_string(rank); }

std::vector<uint8_t> ToBytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// This host's interface addresses, as " 10.0.0.2 127.0.0.1 " (spaces around each).
std::string LocalAddresses() {
  std::string out = " ";
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr) continue;
    char buf[INET6_ADDRSTRLEN] = {0};
    int family = a->ifa_addr->sa_family;
    const void* raw =
        family == AF_INET    ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr)
        : family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr)
                             : nullptr;
    if (raw && inet_ntop(family, raw, buf, sizeof buf)) out += std::string(buf) + " ";
  }
  freeifaddrs(list);
  return out;
}

// initProcessGroup(backend, host, port, rank, worldSize, timeoutMs) -> group id 0
Napi::Value Init(const Napi::CallbackInfo& info) {
  std::string backend = ToString(info[0], "backend");
  std::string host = ToString(info[1], "host");
  int64_t port = ToInt(info[2], "port");
  int64_t rank = ToInt(info[3], "rank");
  int64_t worldSize = ToInt(info[4], "worldSize");
  int64_t timeoutMs = ToInt(info[5], "timeout");
  if (port < 1 || port > 65535) throw RangeArgumentError("port must be in 1..65535, got " + std::to_string(port));
  if (worldSize < 1) throw RangeArgumentError("worldSize must be at least 1, got " + std::to_string(worldSize));
  if (rank < 0 || rank >= worldSize) {
    throw RangeArgumentError("rank must be in 0.." + std::to_string(worldSize - 1) + ", got " + std::to_string(rank));
  }
  if (timeoutMs < 1) throw RangeArgumentError("timeout must be a positive number of milliseconds");
  if (backend != "gloo" && backend != "nccl") throw RangeArgumentError("unknown backend '" + backend + "'");
#ifndef VGG_TORCH_WITH_NCCL
  if (backend == "nccl") {
    throw NativeError("the nccl backend is not available: this libtorch was built without NCCL (use 'gloo')");
  }
#endif
  World& w = TheWorld();
  std::lock_guard<std::mutex> lock(w.mutex);
  if (w.store) throw NativeError("the default process group is already initialized (call destroyProcessGroup() first)");

  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(port);
  o.isServer = rank == 0;
  o.numWorkers = static_cast<std::size_t>(worldSize);
  o.timeout = std::chrono::milliseconds(timeoutMs);
  o.multiTenant = true;  // as Python's rendezvous handlers
  c10::intrusive_ptr<c10d::Store> tcp;
  try {
    tcp = MakeStore(host, o);
  } catch (const c10::Error& e) {
    throw NativeError("rank " + std::to_string(rank) + " could not " + (rank == 0 ? "start" : "reach") +
                      " the TCPStore at " + host + ":" + std::to_string(port) + " within " + std::to_string(timeoutMs) +
                      " ms: " + CleanMessage(e));
  } catch (const std::exception& e) {
    throw NativeError("rank " + std::to_string(rank) + " could not " + (rank == 0 ? "start" : "reach") +
                      " the TCPStore at " + host + ":" + std::to_string(port) + " within " + std::to_string(timeoutMs) +
                      " ms: " + e.what());
  }
  w.store = c10::make_intrusive<c10d::PrefixStore>("default_pg", tcp);
  w.rank = static_cast<int>(rank);
  w.worldSize = static_cast<int>(worldSize);
  w.backend = backend;
  w.host = host;
  w.timeout = std::chrono::milliseconds(timeoutMs);
  w.groupCount = 0;
  w.storeDoubtful = false;
  try {
    std::string name = std::to_string(w.groupCount++);
    Group pg = MakeGroup(w, w.store, name, w.rank, w.worldSize);
#if VGG_TORCH_C10D_BACKENDS
    w.groupStore = c10::make_intrusive<c10d::PrefixStore>(name + "/", w.store);
#else
    w.groupStore = w.store;
#endif
    w.store->set(AddrKey(w.rank), ToBytes(LocalAddresses()));
    StoreBarrier(w, w.store, name);
    SetSequenceNumber(pg);
    w.groups.push_back(pg);
  } catch (...) {
    w.store.reset();
    w.groupStore.reset();
    w.groups.clear();
    throw;
  }
  return Napi::Number::New(info.Env(), 0);
}

// newGroup(ranks) -> id, or -1 on a rank outside the group. Every rank calls it.
Napi::Value NewGroup(const Napi::CallbackInfo& info) {
  World& w = TheWorld();
  std::lock_guard<std::mutex> lock(w.mutex);
  if (!w.store) throw NativeError("the default process group is not initialized (call initProcessGroup() first)");
  std::vector<int64_t> ranks = ToIntList(info[0], "ranks");
  std::sort(ranks.begin(), ranks.end());
  int groupRank = -1;
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (ranks[i] < 0 || ranks[i] >= w.worldSize) {
      throw RangeArgumentError("newGroup(): rank " + std::to_string(ranks[i]) + " is outside the world of size " +
                               std::to_string(w.worldSize));
    }
    if (i > 0 && ranks[i] == ranks[i - 1])
      throw RangeArgumentError("newGroup(): rank " + std::to_string(ranks[i]) + " given twice");
    if (ranks[i] == w.rank) groupRank = static_cast<int>(i);
  }
  std::string name = std::to_string(w.groupCount++);
  Group pg;
  if (groupRank >= 0) pg = MakeGroup(w, w.groupStore, name, groupRank, static_cast<int>(ranks.size()));
  StoreBarrier(w, w.groupStore, name);
  if (pg) SetSequenceNumber(pg);
  w.groups.push_back(pg);
  return Napi::Number::New(info.Env(), pg ? static_cast<double>(w.groups.size() - 1) : -1);
}

Napi::Value Destroy(const Napi::CallbackInfo& info) {
  World& w = TheWorld();
  std::lock_guard<std::mutex> lock(w.mutex);
  w.loggers.clear();
  w.reducers.clear();
  w.groups.clear();
  w.groupStore.reset();
  w.store.reset();
  w.rank = -1;
  w.worldSize = 0;
  w.groupCount = 0;
  return info.Env().Undefined();
}

Napi::Value IsInitialized(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), static_cast<bool>(TheWorld().store));
}

Group GetGroup(const Napi::Value& v) {
  World& w = TheWorld();
  int64_t id = ToInt(v, "group");
  std::lock_guard<std::mutex> lock(w.mutex);
  if (!w.store) throw NativeError("the default process group is not initialized (call initProcessGroup() first)");
  if (id < 0 || id >= static_cast<int64_t>(w.groups.size()) || !w.groups[id]) {
    throw RangeArgumentError("this rank is not a member of process group " + std::to_string(id));
  }
  return w.groups[id];
}

Napi::Value GroupRank(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), GetGroup(info[0])->getRank());
}

Napi::Value GroupSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), GetGroup(info[0])->getSize());
}

std::string Described(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return CleanMessage(*c);
  return e.what();
}

// The peer address in a Gloo error ("Read error [10.0.0.2]:41234: Connection reset by peer"),
// not its source locations ("[./gloo/transport/tcp/pair.cc:589]"); "" when there is none.
std::string PeerAddress(const std::string& msg) {
  for (size_t open = msg.find('['); open != std::string::npos; open = msg.find('[', open + 1)) {
    size_t close = msg.find(']', open);
    if (close == std::string::npos) break;
    std::string inside = msg.substr(open + 1, close - open - 1);
    if (!inside.empty() && inside.find_first_not_of("0123456789abcdefABCDEF.:") == std::string::npos) return inside;
  }
  return "";
}

bool IsTimeout(const std::string& msg) {
  return msg.find("Timed out") != std::string::npos || msg.find("timed out") != std::string::npos ||
         msg.find("Timeout") != std::string::npos;
}

// What can be said of the ranks a failure `msg` on this rank comes from: those that exited
// (" (rank 1 exited with code 3)", from the store), the ranks on the host whose address Gloo's
// error names, or, after a timeout, what to check (without asking the store, which may be as
// unreachable as the peers); "" when nothing is known.
std::string ExitNote(const std::string& msg) {
  World& w = TheWorld();
  if (!w.store) return "";
  std::string timeoutMs = std::to_string(w.timeout.count());
  if (IsTimeout(msg)) {
    w.storeDoubtful = true;
    return " (no answer from the other ranks within the timeout of " + timeoutMs +
           " ms: a rank is hung, or a host is unreachable. Check every node's log, and that each host reaches " +
           (w.rank == 0 ? "this one" : "rank 0's host " + w.host) + " and the others; --dist-timeout sets the wait)";
  }
  std::string exited;
  std::string gone;
  std::string peer = PeerAddress(msg);
  try {
    for (int r = 0; r < w.worldSize; ++r) {
      if (r == w.rank) continue;
      if (w.store->check({ExitKey(r)})) {
        std::vector<uint8_t> code = w.store->get(ExitKey(r));
        exited += std::string(exited.empty() ? "" : ", ") + "rank " + std::to_string(r) + " exited with code " +
                  std::string(code.begin(), code.end());
      } else if (!peer.empty() && w.store->check({AddrKey(r)})) {
        std::vector<uint8_t> addrs = w.store->get(AddrKey(r));
        if (std::string(addrs.begin(), addrs.end()).find(" " + peer + " ") != std::string::npos)
          gone += std::string(gone.empty() ? "" : ", ") + std::to_string(r);
      }
    }
  } catch (const std::exception&) {
    w.storeDoubtful = true;
    return w.rank == 0 ? ""
                       : " (the store on rank 0 at " + w.host +
                             " cannot be reached either: rank 0 has exited or its host is unreachable; check node 0's "
                             "log and the network)";
  }
  if (!exited.empty()) return " (" + exited + ")";
  if (!gone.empty()) {
    bool one = gone.find(',') == std::string::npos;
    return " (the peer at " + peer + " is " + (one ? "rank " : "one of ranks ") + gone +
           ", which went away without exiting cleanly: killed, or its host lost. Check that node's log)";
  }
  return "";
}

std::string CollectiveFailure(int rank, const std::exception& e) {
  std::string what = Described(e);
  return "collective failed on rank " + std::to_string(rank) + ": " + what + ExitNote(what);
}

// Waits for a Work, then runs `after` (e.g. the division of an emulated average).
// Synchronously, or on a libuv worker with a promise.
class WorkWorker : public Napi::AsyncWorker {
 public:
  WorkWorker(Napi::Env env, c10::intrusive_ptr<c10d::Work> work, std::function<void()> after,
             std::function<std::vector<at::Tensor>()> results, int rank)
      : Napi::AsyncWorker(env), work_(std::move(work)), after_(std::move(after)), results_(std::move(results)),
        rank_(rank), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      work_->wait();
      if (after_) after_();
      if (results_) out_ = results_();
    } catch (const std::exception& e) {
      SetError(CollectiveFailure(rank_, e));
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!results_) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    Napi::Array arr = Napi::Array::New(env, out_.size());
    for (size_t i = 0; i < out_.size(); ++i) arr.Set(i, WrapTensor(env, out_[i]));
    deferred_.Resolve(arr);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(Napi::Error::New(Env(), e.Message()).Value()); }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::function<void()> after_;
  std::function<std::vector<at::Tensor>()> results_;
  std::vector<at::Tensor> out_;
  int rank_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value Finish(const Napi::CallbackInfo& info, bool async, const Group& pg,
                   std::function<c10::intrusive_ptr<c10d::Work>()> start, std::function<void()> after = {},
                   std::function<std::vector<at::Tensor>()> results = {}) {
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = start();
  } catch (const std::exception& e) {
    throw NativeError(CollectiveFailure(TheWorld().rank, e));
  }
  if (async) {
    auto* worker = new WorkWorker(info.Env(), work, after, results, TheWorld().rank);
    auto promise = worker->Promise();
    worker->Queue();
    return promise;
  }
  try {
    work->wait();
    if (after) after();
  } catch (const std::exception& e) {
    throw NativeError(CollectiveFailure(TheWorld().rank, e));
  }
  if (!results) return info.Env().Undefined();
  auto out = results();
  Napi::Array arr = Napi::Array::New(info.Env(), out.size());
  for (size_t i = 0; i < out.size(); ++i) arr.Set(i, WrapTensor(info.Env(), out[i]));
  return arr;
}

c10d::ReduceOp ToReduceOp(const std::string& op) {
  if (op == "sum" || op == "avg") return c10d::ReduceOp(c10d::ReduceOp::SUM);
  if (op == "product") return c10d::ReduceOp(c10d::ReduceOp::PRODUCT);
  if (op == "min") return c10d::ReduceOp(c10d::ReduceOp::MIN);
  if (op == "max") return c10d::ReduceOp(c10d::ReduceOp::MAX);
  throw RangeArgumentError("unknown reduce op '" + op + "' (expected sum, avg, product, min or max)");
}

bool AsyncFlag(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && ToBool(info[i], "async"); }

// allReduce(group, tensor, op, async). Gloo in libtorch 1.13 has no AVG
// ("Cannot use ReduceOp.AVG with Gloo"): avg is a sum divided by the group size.
Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  Group pg = GetGroup(info[0]);
  at::Tensor t = UnwrapTensor(info[1], "tensor");
  std::string op = ToString(info[2], "op");
  c10d::AllreduceOptions opts;
  opts.reduceOp = ToReduceOp(op);
  auto tensors = std::make_shared<std::vector<at::Tensor>>(std::vector<at::Tensor>{t});
  std::function<void()> after;
  if (op == "avg") {
    if (!at::isFloatingType(t.scalar_type()))
      throw ArgumentError("allReduce(): op 'avg' needs a floating-point tensor, got " +
                          std::string(c10::toString(t.scalar_type())));
    int size = pg->getSize();
    after = [t, size]() mutable { t.div_(size); };
  }
  return Finish(
      info, AsyncFlag(info, 3), pg, [pg, tensors, opts]() { return pg->allreduce(*tensors, opts); }, after);
}

// broadcast(group, tensor, src (group rank), async)
Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  Group pg = GetGroup(info[0]);
  at::Tensor t = UnwrapTensor(info[1], "tensor");
  int64_t src = ToInt(info[2], "src");
  if (src < 0 || src >= pg->getSize())
    throw RangeArgumentError("broadcast(): src " + std::to_string(src) + " is not a rank of the group");
  c10d::BroadcastOptions opts;
  opts.rootRank = src;
  auto tensors = std::make_shared<std::vector<at::Tensor>>(std::vector<at::Tensor>{t});
  return Finish(info, AsyncFlag(info, 3), pg, [pg, tensors, opts]() { return pg->broadcast(*tensors, opts); });
}

// allGather(group, tensor, async) -> one new tensor per rank
Napi::Value AllGather(const Napi::CallbackInfo& info) {
  Group pg = GetGroup(info[0]);
  at::Tensor t = UnwrapTensor(info[1], "tensor");
  auto inputs = std::make_shared<std::vector<at::Tensor>>(std::vector<at::Tensor>{t});
  auto outputs = std::make_shared<std::vector<std::vector<at::Tensor>>>(1);
  for (int i = 0; i < pg->getSize(); ++i) (*outputs)[0].push_back(at::empty_like(t));
  return Finish(
      info, AsyncFlag(info, 2), pg, [pg, inputs, outputs]() { return pg->allgather(*outputs, *inputs); }, {},
      [outputs]() { return (*outputs)[0]; });
}

// reduceScatter(group, output, inputs, op, async)
Napi::Value ReduceScatter(const Napi::CallbackInfo& info) {
  Group pg = GetGroup(info[0]);
  at::Tensor out = UnwrapTensor(info[1], "output");
  if (!info[2].IsArray()) throw ArgumentError("reduceScatter(): inputs must be an array of tensors");
  Napi::Array arr = info[2].As<Napi::Array>();
  std::vector<at::Tensor> ins;
  for (uint32_t i = 0; i < arr.Length(); ++i) ins.push_back(UnwrapTensor(arr.Get(i), "inputs"));
  std::string op = ToString(info[3], "op");
  c10d::ReduceScatterOptions opts;
  opts.reduceOp = ToReduceOp(op);
  if (op == "avg") throw RangeArgumentError("reduceScatter(): op 'avg' is not supported");
  auto outs = std::make_shared<std::vector<at::Tensor>>(std::vector<at::Tensor>{out});
  auto inputs = std::make_shared<std::vector<std::vector<at::Tensor>>>(std::vector<std::vector<at::Tensor>>{ins});
  return Finish(info, AsyncFlag(info, 4), pg, [pg, outs, inputs, opts]() {
    try {
      return pg->reduce_scatter(*outs, *inputs, opts);
    } catch (const std::exception& e) {
      // Gloo gained reduce_scatter after 2.6: name the version that lacks it.
      if (std::string(e.what()).find("not support reduce_scatter") == std::string::npos) throw;
      throw NativeError("reduceScatter() is not supported by the " + pg->getBackendName() + " backend of libtorch " +
                        TORCH_VERSION + " (" + Described(e) +
                        "): use allReduce() and take your slice, or a newer libtorch, or the nccl backend");
    }
  });
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Group pg = GetGroup(info[0]);
  return Finish(info, AsyncFlag(info, 1), pg, [pg]() { return pg->barrier(); });
}

std::vector<at::Tensor> ToTensorList(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw ArgumentError(std::string(what) + " must be an array of tensors");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(UnwrapTensor(arr.Get(i), what));
  return out;
}

// DDP's _broadcast_coalesced(group, tensors, bufferSize, src)
Napi::Value BroadcastCoalesced(const Napi::CallbackInfo& info) {
  Group pg = GetGroup(info[0]);
  auto tensors = ToTensorList(info[1], "tensors");
  int64_t bufferSize = ToInt(info[2], "bufferSize");
  int64_t src = ToInt(info[3], "src");
  if (tensors.empty()) return info.Env().Undefined();
  try {
    c10d::broadcast_coalesced(pg, tensors, static_cast<size_t>(bufferSize), static_cast<int>(src));
  } catch (const std::exception& e) {
    throw NativeError("broadcast of parameters/buffers failed on rank " + std::to_string(pg->getRank()) + ": " +
                      Described(e));
  }
  return info.Env().Undefined();
}

// DDP's _verify_params_across_processes: same count and shapes on every rank.
Napi::Value VerifyParams(const Napi::CallbackInfo& info) {
  Group pg = GetGroup(info[0]);
  auto tensors = ToTensorList(info[1], "params");
  c10d::verify_params_across_processes(pg, tensors, c10::nullopt);
  return info.Env().Undefined();
}

std::shared_ptr<c10d::Reducer> GetReducer(const Napi::Value& v) {
  World& w = TheWorld();
  int64_t id = ToInt(v, "reducer");
  std::lock_guard<std::mutex> lock(w.mutex);
  if (id < 0 || id >= static_cast<int64_t>(w.reducers.size()) || !w.reducers[id]) {
    throw RangeArgumentError("DistributedDataParallel: no such reducer (process group destroyed?)");
  }
  return w.reducers[id];
}

// reducerNew(group, params, bucketCapBytes, findUnusedParameters, gradientAsBucketView, names) -> id.
// Buckets as DDP's _ddp_init_helper (1.13): without findUnusedParameters the
// first iteration runs with one bucket (limit sys.maxsize) and rebuild_buckets
// then cuts the real gradient order into [1 MiB, cap, cap, ...]; the Reducer
// gets them reversed, with a c10d::Logger as Python sets one.
Napi::Value ReducerNew(const Napi::CallbackInfo& info) {
  Group pg = GetGroup(info[0]);
  auto params = ToTensorList(info[1], "params");
  int64_t cap = ToInt(info[2], "bucketCapBytes");
  bool findUnused = ToBool(info[3], "findUnusedParameters");
  bool asView = ToBool(info[4], "gradientAsBucketView");
  std::unordered_map<size_t, std::string> names;
  if (info[5].IsArray()) {
    Napi::Array arr = info[5].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) names[i] = ToString(arr.Get(i), "names");
  }
  if (params.empty())
    throw RangeArgumentError("DistributedDataParallel: the module has no parameter that requires grad");
  std::vector<bool> sparse(params.size(), false);
  std::vector<size_t> limits0 =
      findUnused ? std::vector<size_t>{static_cast<size_t>(c10d::kDefaultFirstBucketBytes), static_cast<size_t>(cap)}
                 : std::vector<size_t>{static_cast<size_t>(std::numeric_limits<int64_t>::max())};
  auto [buckets, limits] = c10d::compute_bucket_assignment_by_size(params, limits0, sparse);
  std::reverse(buckets.begin(), buckets.end());
  std::reverse(limits.begin(), limits.end());
  auto reducer = compat::MakeReducer(params, buckets, limits, pg, sparse, cap, findUnused, asView, names,
                                     c10d::kDefaultFirstBucketBytes);
  auto logger = std::make_shared<c10d::Logger>(reducer);
  reducer->set_logger(logger);
  World& w = TheWorld();
  std::lock_guard<std::mutex> lock(w.mutex);
  w.reducers.push_back(reducer);
  w.loggers.push_back(logger);
  return Napi::Number::New(info.Env(), static_cast<double>(w.reducers.size() - 1));
}

Napi::Value ReducerFree(const Napi::CallbackInfo& info) {
  World& w = TheWorld();
  int64_t id = ToInt(info[0], "reducer");
  std::lock_guard<std::mutex> lock(w.mutex);
  if (id >= 0 && id < static_cast<int64_t>(w.reducers.size())) {
    w.loggers[id].reset();
    w.reducers[id].reset();
  }
  return info.Env().Undefined();
}

// The forward half of DDP, in Python's order: prepare_for_forward (when grads
// will be synced), then rebuild_buckets (when grad is enabled; after the first
// iteration it broadcasts rank 0's bucket order, a collective).
Napi::Value ReducerPrepareForward(const Napi::CallbackInfo& info) {
  auto r = GetReducer(info[0]);
  bool prepare = ToBool(info[1], "prepare");
  bool rebuild = ToBool(info[2], "rebuild");
  try {
    if (prepare) r->prepare_for_forward();
    if (rebuild) r->rebuild_buckets();
  } catch (const std::exception& e) {
    throw NativeError("DistributedDataParallel forward failed on rank " + std::to_string(TheWorld().rank) + ": " +
                      Described(e));
  }
  return info.Env().Undefined();
}

Napi::Value ReducerPrepareForBackward(const Napi::CallbackInfo& info) {
  auto r = GetReducer(info[0]);
  auto outputs = ToTensorList(info[1], "outputs");
  r->prepare_for_backward(outputs);
  return info.Env().Undefined();
}

// The compressing hooks of torch/distributed/algorithms/ddp_comm_hooks/default_hooks.py
// (or, without a dtype, allreduce_hook) on any group: the bucket cast to `dtype`
// and divided by the group size first (so the sum cannot overflow), summed, then
// copied back into the bucket. A C++ hook because the Reducer runs it from
// libtorch's autograd threads, where no JS can run.
class CompressCommHook : public c10d::CommHookInterface {
 public:
  CompressCommHook(Group pg, c10::optional<at::ScalarType> dtype) : pg_(std::move(pg)), dtype_(dtype) {}

  c10::intrusive_ptr<c10::ivalue::Future> runHook(c10d::GradBucket& bucket) override {
    at::Tensor buffer = bucket.getBufferRef();
    if (!dtype_) {
      buffer.div_(pg_->getSize());
      std::vector<at::Tensor> tensors{buffer};
      return pg_->allreduce(tensors)->getFuture();
    }
    at::Tensor compressed = buffer.to(*dtype_).div_(pg_->getSize());
    std::vector<at::Tensor> tensors{compressed};
    auto fut = pg_->allreduce(tensors)->getFuture();
    return fut->then(
        [buffer](c10::ivalue::Future& done) {
          buffer.copy_(done.value().toTensorVector()[0]);
          return c10::IValue(buffer);
        },
        c10::TensorType::get());
  }

  at::Tensor parseHookResult(const c10::IValue& result) override {
    return result.isTensor() ? result.toTensor() : result.toTensorVector()[0];
  }

 private:
  Group pg_;
  c10::optional<at::ScalarType> dtype_;
};

// PowerSGDState of torch/distributed/algorithms/ddp_comm_hooks/powerSGD_hook.py: the
// hyperparameters and the per-bucket memory (error feedback, warm-started P and Q), shared
// by the JS PowerSGDState (an External) and the hooks it is registered with. The same in
// PyTorch 1.13 and 2.6 (they differ in logging only; 2.6 imports numpy lazily).
struct PowerSGDState {
  int64_t rank = 1;
  int64_t startIter = 1000;
  double minCompressionRate = 2;
  bool errorFeedback = true;
  bool warmStart = true;
  double epsilon = 0;
  // numpy's RandomState(random_seed): its legacy int seeding is MT19937's init_genrand,
  // which std::mt19937 also is.
  std::mt19937 rng;
  std::map<size_t, at::Tensor> errors, ps, qs;  // by bucket index
  int64_t iter = 0;
  int64_t numelBefore = 0, numelAfter = 0;
  std::mutex mutex;  // the hook runs on autograd threads; JS reads iter and the stats

  // rng.randint(1_000_000_000) of numpy's legacy RandomState: 32-bit draws masked to
  // 0x3FFFFFFF (the smallest all-ones mask covering the range), rejected above it.
  int64_t RandInt() {
    constexpr uint32_t kRange = 999999999, kMask = 0x3FFFFFFF;
    uint32_t v;
    do v = static_cast<uint32_t>(rng()) & kMask;
    while (v > kRange);
    return v;
  }

  // maybe_increase_iter: bucket 0 is the last to be reduced in an iteration.
  void MaybeIncreaseIter(const c10d::GradBucket& bucket) {
    if (bucket.isLast()) iter++;
  }
};

// _orthogonalize: Gram-Schmidt for a rank up to 2 (or half precision), else QR in place.
void Orthogonalize(at::Tensor& matrices, double epsilon) {
  int64_t rank = matrices.size(2);
  at::ScalarType dtype = matrices.scalar_type();
  if (rank > 2 && dtype != at::kHalf && dtype != at::kBFloat16) {
    at::Tensor r = at::empty({matrices.size(0), rank, rank}, matrices.options());
    at::linalg_qr_out(matrices, r, matrices);
    return;
  }
  // _orthogonalize_gram_schmidt; torch.norm(col, dim=1, keepdim=True) is this vector norm.
  const std::vector<int64_t> dim1{1};
  for (int64_t i = 0; i < rank; i++) {
    at::Tensor col = matrices.slice(2, i, i + 1);
    at::Tensor norm = at::linalg_vector_norm(col, 2, dim1, true);
    // epsilon 0: a zero column becomes NaN, as in PyTorch (its ZeroDivisionError never fires for tensors)
    col.div_(epsilon == 0 ? norm : norm + epsilon);
    if (i + 1 < rank) {
      at::Tensor rest = matrices.slice(2, i + 1);
      rest.sub_(at::sum(col * rest, dim1, true) * col);
    }
  }
}

at::Tensor AllReduceWait(const Group& pg, at::Tensor t) {
  std::vector<at::Tensor> tensors{std::move(t)};
  pg->allreduce(tensors)->wait();
  return tensors[0];
}

// powerSGD_hook: plain averaging allreduce for the first startIter iterations, then per
// bucket: the error of the last step added back (error feedback); the gradients that are
// worth it (1-D ones never are at minCompressionRate >= 1) compressed to P = M Q and
// Q = Mᵀ P with P, Q of rank `rank`, orthogonalized, summed over the group; the rest summed
// as one flat tensor and averaged. PyTorch chains these steps in futures; here they run to
// the end inside the hook, waiting on each allreduce, so every rank issues its collectives in
// the same order whatever the timing of the autograd thread (a Python rank shares the group
// only if it waits likewise; test/ddp-powersgd.test.ts wraps powerSGD_hook so).
class PowerSGDCommHook : public c10d::CommHookInterface {
 public:
  PowerSGDCommHook(Group pg, std::shared_ptr<PowerSGDState> state) : pg_(std::move(pg)), state_(std::move(state)) {}

  c10::intrusive_ptr<c10::ivalue::Future> runHook(c10d::GradBucket& bucket) override {
    PowerSGDState& s = *state_;
    std::lock_guard<std::mutex> lock(s.mutex);
    at::Tensor input = bucket.getBufferRef();
    const int64_t worldSize = pg_->getSize();
    if (s.iter < s.startIter) {
      s.MaybeIncreaseIter(bucket);
      input.div_(worldSize);  // default._allreduce_fut: divide first, then sum
      std::vector<at::Tensor> tensors{input};
      return pg_->allreduce(tensors)->getFuture();
    }
    const size_t index = bucket.getIndex();
    const auto options = input.options();
    at::Tensor inputCopy;
    if (s.errorFeedback) {
      auto it = s.errors.find(index);
      if (it != s.errors.end())
        input.add_(it->second);
      else
        s.errors[index] = at::zeros({input.size(0)}, options);
      inputCopy = input.clone();
    }

    // Step I: which gradients are compressed. view(shape[0], -1); a 0-d gradient (where
    // PyTorch fails on shape[0]) counts as one element.
    std::vector<at::Tensor> gradients = bucket.getGradients();
    std::vector<at::Tensor> uncompressed;
    // tensors to compress grouped by shape, in the order each shape first appears (PyTorch's
    // defaultdict): the order of P and Q in memory and of the random draws
    std::vector<std::pair<std::vector<int64_t>, std::vector<at::Tensor>>> byShape;
    int64_t totalP = 0, totalQ = 0;
    for (const at::Tensor& g : gradients) {
      at::Tensor matrix = g.dim() == 0 ? g.view({1, 1}) : g.view({g.size(0), -1});
      const int64_t n = matrix.size(0), m = matrix.size(1);
      const int64_t r = std::min({n, m, s.rank});
      s.numelBefore += n * m;
      if (static_cast<double>((n + m) * r) * s.minCompressionRate < static_cast<double>(n * m)) {
        std::vector<int64_t> shape{n, m};
        auto it = std::find_if(byShape.begin(), byShape.end(), [&](const auto& e) { return e.first == shape; });
        if (it == byShape.end()) it = byShape.insert(byShape.end(), {shape, {}});
        it->second.push_back(matrix);
        totalP += n * r;
        totalQ += m * r;
        s.numelAfter += (n + m) * r;
      } else {
        uncompressed.push_back(g);
        s.numelAfter += n * m;
      }
    }

    // Step II: the uncompressed gradients as one flat tensor
    std::vector<at::Tensor> flat;
    for (const at::Tensor& g : uncompressed) flat.push_back(g.view({-1}));
    at::Tensor uncompressedMemory = flat.empty() ? at::empty({0}, options) : at::cat(flat);

    // Step III: P and Q in one flat tensor each, kept between steps with warm start
    bool randomizeQs = false;
    if (!s.warmStart || s.ps.count(index) == 0) {
      randomizeQs = true;
      s.ps[index] = at::empty({totalP}, options);
      s.qs[index] = at::empty({totalQ}, options);
    }
    at::Tensor pMemory = s.ps[index], qMemory = s.qs[index];
    std::vector<at::Tensor> matrices, ps, qs;
    int64_t pIdx = 0, qIdx = 0;
    for (const auto& group : byShape) {
      for (const at::Tensor& matrix : group.second) {
        const int64_t n = matrix.size(0), m = matrix.size(1), r = std::min({n, m, s.rank});
        matrices.push_back(matrix.unsqueeze(0));
        ps.push_back(pMemory.slice(0, pIdx, pIdx + n * r).view({1, n, r}));
        qs.push_back(qMemory.slice(0, qIdx, qIdx + m * r).view({1, m, r}));
        pIdx += n * r;
        qIdx += m * r;
      }
    }
    if (!randomizeQs) {
      for (at::Tensor& q : qs) Orthogonalize(q, s.epsilon);
    } else {
      // torch.manual_seed(rng.randint(1_000_000_000)) inside fork_rng, then torch.randn on
      // the CPU: a CPU generator with that seed draws the same numbers and leaves the
      // global one alone, as fork_rng does
      at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(s.RandInt()));
      for (at::Tensor& q : qs) {
        q.copy_(at::randn(q.sizes(), gen, options.device(at::kCPU)));
        Orthogonalize(q, s.epsilon);
      }
    }
    for (size_t i = 0; i < matrices.size(); i++) at::bmm_out(ps[i], matrices[i], qs[i]);

    // the uncompressed sum, averaged after it (unlike the plain phase)
    AllReduceWait(pg_, uncompressedMemory).div_(worldSize);
    int64_t idx = 0;
    for (at::Tensor& g : uncompressed) {
      g.copy_(uncompressedMemory.slice(0, idx, idx + g.numel()).view_as(g));
      idx += g.numel();
    }
    // Ps are orthogonalized after the sum: no need to average them
    AllReduceWait(pg_, pMemory);
    for (at::Tensor& p : ps) Orthogonalize(p, s.epsilon);
    for (size_t i = 0; i < matrices.size(); i++) at::bmm_out(qs[i], matrices[i].transpose(1, 2), ps[i]);
    AllReduceWait(pg_, qMemory).div_(worldSize);
    // decompress: M ≈ P Qᵀ, written into the bucket
    for (size_t i = 0; i < matrices.size(); i++) at::bmm_out(matrices[i], ps[i], qs[i].transpose(1, 2));

    if (s.errorFeedback) s.errors[index] = inputCopy - input;
    if (!s.warmStart) {
      s.ps.clear();
      s.qs.clear();
    }
    s.MaybeIncreaseIter(bucket);
    auto fut = c10::make_intrusive<c10::ivalue::Future>(c10::TensorType::get());
    fut->markCompleted(c10::IValue(input));
    return fut;
  }

  at::Tensor parseHookResult(const c10::IValue& result) override {
    return result.isTensor() ? result.toTensor() : result.toTensorVector()[0];
  }

 private:
  Group pg_;
  std::shared_ptr<PowerSGDState> state_;
};

const napi_type_tag kPowerSGDStateTag = {0x7667677470736764ULL, 0x5374617465000001ULL};
struct PowerSGDStateBox {
  std::shared_ptr<PowerSGDState> state;
};

std::shared_ptr<PowerSGDState> UnwrapPowerSGDState(const Napi::Value& v) {
  if (!v.IsExternal() || !v.As<Napi::External<PowerSGDStateBox>>().CheckTypeTag(&kPowerSGDStateTag))
    throw ArgumentError("state must be a PowerSGD state handle, got " + Shown(v));
  return v.As<Napi::External<PowerSGDStateBox>>().Data()->state;
}

// powerSGDStateNew(rank, startIter, minCompressionRate, errorFeedback, warmStart, epsilon,
// seed): the options checked by lib/distributed/algorithms/ddpCommHooks/powerSGD.ts.
Napi::Value PowerSGDStateNew(const Napi::CallbackInfo& info) {
  auto s = std::make_shared<PowerSGDState>();
  s->rank = ToInt(info[0], "matrixApproximationRank");
  s->startIter = ToInt(info[1], "startPowerSGDIter");
  s->minCompressionRate = ToDouble(info[2], "minCompressionRate");
  s->errorFeedback = ToBool(info[3], "useErrorFeedback");
  s->warmStart = ToBool(info[4], "warmStart");
  s->epsilon = ToDouble(info[5], "orthogonalizationEpsilon");
  int64_t seed = ToInt(info[6], "randomSeed");
  if (s->rank < 1 || seed < 0 || seed > 0xFFFFFFFFLL)
    throw RangeArgumentError("PowerSGDState: matrixApproximationRank or randomSeed out of range");
  s->rng.seed(static_cast<uint32_t>(seed));
  auto ext = Napi::External<PowerSGDStateBox>::New(info.Env(), new PowerSGDStateBox{std::move(s)},
                                                   [](Napi::Env, PowerSGDStateBox* box) { delete box; });
  ext.TypeTag(&kPowerSGDStateTag);
  return ext;
}

// powerSGDStateInfo(state) -> [iter, numelBeforeCompression, numelAfterCompression]
Napi::Value PowerSGDStateInfo(const Napi::CallbackInfo& info) {
  auto s = UnwrapPowerSGDState(info[0]);
  std::lock_guard<std::mutex> lock(s->mutex);
  Napi::Array out = Napi::Array::New(info.Env(), 3);
  out.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(s->iter)));
  out.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(s->numelBefore)));
  out.Set(2u, Napi::Number::New(info.Env(), static_cast<double>(s->numelAfter)));
  return out;
}

// reducerRegisterCommHook(reducer, kind, group, builtin[, powerSGDState]): kind "allreduce",
// "fp16", "bf16" or "powerSGD" on `group`. builtin: c10d's own ALLREDUCE / FP16_COMPRESS
// (they run on the Reducer's group, which the caller has checked `group` is).
Napi::Value ReducerRegisterCommHook(const Napi::CallbackInfo& info) {
  auto r = GetReducer(info[0]);
  std::string kind = ToString(info[1], "kind");
  Group pg = GetGroup(info[2]);
  bool builtin = ToBool(info[3], "builtin");
  if (kind != "allreduce" && kind != "fp16" && kind != "bf16" && kind != "powerSGD")
    throw RangeArgumentError("DistributedDataParallel.registerCommHook(): unknown hook kind '" + kind + "'");
  if (kind == "bf16" && !VGG_TORCH_GLOO_BFLOAT16 && TheWorld().backend == "gloo")
    throw NativeError(std::string("DistributedDataParallel.registerCommHook(): bf16CompressHook needs a bfloat16 "
                                  "allreduce, and Gloo in libtorch ") +
                      TORCH_VERSION + " has none; use fp16CompressHook");
  std::shared_ptr<PowerSGDState> powerSGD;
  if (kind == "powerSGD") powerSGD = UnwrapPowerSGDState(info[4]);
  try {
    if (powerSGD) {
      r->register_comm_hook(std::make_unique<PowerSGDCommHook>(pg, powerSGD));
    } else if (builtin && kind != "bf16") {
      r->register_builtin_comm_hook(kind == "fp16" ? c10d::BuiltinCommHookType::FP16_COMPRESS
                                                   : c10d::BuiltinCommHookType::ALLREDUCE);
    } else {
      c10::optional<at::ScalarType> dtype;
      if (kind == "fp16") dtype = at::kHalf;
      if (kind == "bf16") dtype = at::kBFloat16;
      r->register_comm_hook(std::make_unique<CompressCommHook>(pg, dtype));
    }
  } catch (const std::exception& e) {
    throw NativeError("DistributedDataParallel.registerCommHook(): " + Described(e));
  }
  return info.Env().Undefined();
}

// markExit(code): called as the process exits; best effort (the store may be gone).
Napi::Value MarkExit(const Napi::CallbackInfo& info) {
  World& w = TheWorld();
  if (!w.store || w.storeDoubtful || !info[0].IsNumber()) return info.Env().Undefined();
  std::string code = std::to_string(info[0].As<Napi::Number>().Int32Value());
  try {
    w.store->set(ExitKey(w.rank), std::vector<uint8_t>(code.begin(), code.end()));
  } catch (const std::exception&) {
  }
  return info.Env().Undefined();
}

// exitNote(message) -> ExitNote(message), for failures outside the collectives (a DDP backward).
Napi::Value ExitNoteJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ExitNote(ToString(info[0], "message")));
}

#endif  // VGG_TORCH_WITH_GLOO

}  // namespace

void InitDistributed(Napi::Env env, Napi::Object exports) {
  Export<IsAvailable>(env, exports, "distIsAvailable");
  Export<NcclAvailable>(env, exports, "distNcclAvailable");
#ifdef VGG_TORCH_WITH_GLOO
  Export<Init>(env, exports, "distInit");
  Export<NewGroup>(env, exports, "distNewGroup");
  Export<Destroy>(env, exports, "distDestroy");
  Export<IsInitialized>(env, exports, "distIsInitialized");
  Export<GroupRank>(env, exports, "distGroupRank");
  Export<GroupSize>(env, exports, "distGroupSize");
  Export<AllReduce>(env, exports, "distAllReduce");
  Export<Broadcast>(env, exports, "distBroadcast");
  Export<AllGather>(env, exports, "distAllGather");
  Export<ReduceScatter>(env, exports, "distReduceScatter");
  Export<Barrier>(env, exports, "distBarrier");
  Export<BroadcastCoalesced>(env, exports, "distBroadcastCoalesced");
  Export<VerifyParams>(env, exports, "distVerifyParams");
  Export<ReducerNew>(env, exports, "distReducerNew");
  Export<ReducerFree>(env, exports, "distReducerFree");
  Export<ReducerPrepareForward>(env, exports, "distReducerPrepareForward");
  Export<ReducerPrepareForBackward>(env, exports, "distReducerPrepareForBackward");
  Export<ReducerRegisterCommHook>(env, exports, "distReducerRegisterCommHook");
  Export<PowerSGDStateNew>(env, exports, "distPowerSGDStateNew");
  Export<PowerSGDStateInfo>(env, exports, "distPowerSGDStateInfo");
  Export<MarkExit>(env, exports, "distMarkExit");
  Export<ExitNoteJs>(env, exports, "distExitNote");
#endif
}

}  // namespace vggtorch
