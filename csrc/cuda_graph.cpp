// CUDA graph capture and replay (at::cuda::CUDAGraph), which tch does not expose. Built only with
// the `cuda` feature: it links libtorch_cuda and needs the CUDA runtime headers.
//
// A batch-1 ViT-B step is a thousand or more small kernels; launched one by one from the host
// the step costs the launch overhead, not the arithmetic. A captured graph replays them all
// with one launch.
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstring>
#include <exception>
#include <optional>

namespace {

struct Graph {
  at::cuda::CUDAGraph graph;
  c10::cuda::CUDAStream stream;
  std::optional<c10::cuda::CUDAStreamGuard> on_stream;
  explicit Graph(int device) : stream(c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(device))) {}
};

// Exceptions must not cross into Rust: each entry point returns 0 on success, or 1 with a
// malloc'd message in *err (freed by the caller with free()).
template <typename F>
int guarded(char** err, F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    if (err) *err = strdup(e.what());
  } catch (...) {
    if (err) *err = strdup("unknown C++ exception");
  }
  return 1;
}

}  // namespace

extern "C" {

int patrack_graph_new(int device, void** out, char** err) {
  return guarded(err, [&] { *out = new Graph(device); });
}

void patrack_graph_free(void* g) { delete static_cast<Graph*>(g); }

// Work queued from now on goes to the graph's own stream (capture cannot use the default
// stream); the device is synchronised first so that nothing earlier is still in flight.
int patrack_graph_enter_stream(void* g, char** err) {
  return guarded(err, [&] {
    auto* graph = static_cast<Graph*>(g);
    c10::cuda::device_synchronize();
    graph->on_stream.emplace(graph->stream);
  });
}

// Back to the previous stream, after the graph's stream has finished its work.
int patrack_graph_leave_stream(void* g, char** err) {
  return guarded(err, [&] {
    auto* graph = static_cast<Graph*>(g);
    graph->stream.synchronize();
    graph->on_stream.reset();
  });
}

int patrack_graph_capture_begin(void* g, char** err) {
  return guarded(err, [&] { static_cast<Graph*>(g)->graph.capture_begin(); });
}

int patrack_graph_capture_end(void* g, char** err) {
  return guarded(err, [&] { static_cast<Graph*>(g)->graph.capture_end(); });
}

// Launches the whole graph on the current stream: ordered with the copies before and after it.
int patrack_graph_replay(void* g, char** err) {
  return guarded(err, [&] { static_cast<Graph*>(g)->graph.replay(); });
}
}
