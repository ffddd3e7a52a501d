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

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <limits>
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

// reducerRegisterCommHook(reducer, kind, group, builtin): kind "allreduce",
// "fp16" or "bf16" on `group`. builtin: c10d's own ALLREDUCE / FP16_COMPRESS
// (they run on the Reducer's group, which the caller has checked `group` is).
Napi::Value ReducerRegisterCommHook(const Napi::CallbackInfo& info) {
  auto r = GetReducer(info[0]);
  std::string kind = ToString(info[1], "kind");
  Group pg = GetGroup(info[2]);
  bool builtin = ToBool(info[3], "builtin");
  if (kind != "allreduce" && kind != "fp16" && kind != "bf16")
    throw RangeArgumentError("DistributedDataParallel.registerCommHook(): unknown hook kind '" + kind + "'");
  if (kind == "bf16" && !VGG_TORCH_GLOO_BFLOAT16 && TheWorld().backend == "gloo")
    throw NativeError(std::string("DistributedDataParallel.registerCommHook(): bf16CompressHook needs a bfloat16 "
                                  "allreduce, and Gloo in libtorch ") +
                      TORCH_VERSION + " has none; use fp16CompressHook");
  try {
    if (builtin && kind != "bf16") {
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
  Export<MarkExit>(env, exports, "distMarkExit");
  Export<ExitNoteJs>(env, exports, "distExitNote");
#endif
}

}  // namespace vggtorch
