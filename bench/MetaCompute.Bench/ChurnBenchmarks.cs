using BenchmarkDotNet.Attributes;
using MetaCompute.Scheduling;

namespace MetaCompute.Bench;

/// <summary>
/// A node that remembers many holds: under a booking-and-cancelling load the index keeps each ended hold a minute past
/// its end, so one busy node can carry thousands. One benchmark cancels a live hold (its end moves to now) and books it
/// again, as the end-to-end load does; the other decides a one-GPU booking for the next hour on that node.
/// </summary>
[MemoryDiagnoser]
public class ChurnBenchmarks
{
    private PoolOccupancy _pool = null!;
    private LeaseHold _live = null!;
    private PlacementRequest _oneGpu = null!;

    [Params(100, 1_000, 10_000)]
    public int EndedHolds { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _pool = new PoolOccupancy([new NodeSpec(1, 1, 1, Allocatable: true)]);
        var now = LoadedPool.Now;
        // One-GPU holds that each lasted 20 ms, one after another over the last minute, on the node's eight GPUs.
        for (var i = 0; i < EndedHolds; i++)
        {
            var start = now.AddMilliseconds(-60_000 + i * 60_000.0 / EndedHolds);
            _pool.SetLease(new LeaseHold(Guid.NewGuid(), start, start.AddMilliseconds(20), [new NodeGpus(1, (byte)(1 << (i % 8)))]));
        }

        _live = new LeaseHold(Guid.NewGuid(), now, now.AddHours(1), [new NodeGpus(1, 1)]);
        _pool.SetLease(_live);
        _oneGpu = new PlacementRequest(1, now, now.AddHours(1), SingleFabricIsland: false, HoldbackGpus: 0);
    }

    [Benchmark]
    public void CancelAndBookAgain()
    {
        _pool.SetLease(_live with { End = _live.Start.AddMilliseconds(20) });
        _pool.SetLease(_live);
    }

    [Benchmark]
    public PlacementDecision DecideOneGpu() => Allocator.Decide(_pool, _oneGpu);
}
