using BenchmarkDotNet.Attributes;
using MetaCompute.Scheduling;

namespace MetaCompute.Bench;

/// <summary>One allocation decision and one offerings search against a loaded pool, from 10,000 to 1,000,000 GPUs.</summary>
[MemoryDiagnoser]
public class EngineBenchmarks
{
    private PoolOccupancy _pool = null!;
    private PlacementRequest[] _requests = [];
    private int _next;

    [Params(10_000, 100_000, 1_000_000)]
    public int Gpus { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        // Two leases per GPU: 200,000 leases at 100,000 GPUs.
        _pool = LoadedPool.Build(Gpus, Gpus * 2);
        _requests = LoadedPool.Requests(1024);
    }

    [Benchmark]
    public PlacementDecision Decide() => Allocator.Decide(_pool, _requests[_next++ & 1023]);

    [Benchmark]
    public IReadOnlyList<BookableWindow> Offerings()
    {
        var r = _requests[_next++ & 1023];
        return BookableWindows.Find(_pool, new WindowSearch(r.GpuCount, r.End - r.Start, r.Start, r.Start.AddDays(7), r.SingleFabricIsland));
    }
}
