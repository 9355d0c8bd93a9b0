using CsCheck;
using MetaCompute.Simulation.Inventory;
using static MetaCompute.Scheduling.Tests.Engine.Pools;

namespace MetaCompute.Scheduling.Tests.Engine;

/// <summary>Random pools, random existing leases and random queues: backfill never delays a blocked request.</summary>
public sealed class AdmissionPropertyTests
{
    private sealed record Ask(int Gpus, int FromHour, int Hours);

    private static readonly Gen<Ask> GenAsk =
        from small in Gen.Bool
        from gpus in small ? Gen.Int[1, 7] : Gen.Int[1, 8].Select(n => n * 8)
        from fromHour in Gen.Int[0, 6]
        from hours in Gen.Int[1, 12]
        select new Ask(gpus, fromHour, hours);

    private static readonly Gen<(int Seed, int Gpus, Ask[] Existing, Ask[] Queue)> GenCase =
        from seed in Gen.Int[1, 10_000]
        from gpus in Gen.Int[4, 24].Select(n => n * 8)
        from existing in GenAsk.Array[0, 30]
        from queue in GenAsk.Array[1, 20]
        select (seed, gpus, existing, queue);

    [Fact]
    public void Every_blocked_request_can_still_start_at_its_protected_start_and_admitted_ones_never_overlap()
    {
        GenCase.Sample(c =>
        {
            var pool = FromInventory(InventoryGenerator.Generate(InventoryOptions.SinglePool(c.Gpus, seed: c.Seed)));
            foreach (var ask in c.Existing)
            {
                var request = Request(ask.Gpus, ask.FromHour, ask.FromHour + ask.Hours);
                if (Allocator.Decide(pool, request).Placement is { } placement)
                {
                    pool.SetLease(new LeaseHold(Guid.NewGuid(), request.Start, request.End, placement.Gpus));
                }
            }

            var queue = c.Queue.Select(a => new QueuedRequest(Guid.NewGuid(), a.Gpus, T0, TimeSpan.FromHours(a.Hours), false, 0, T0.AddHours(48)))
                .ToList();
            var admitted = new List<Guid>();
            var blocked = Admission.Run(pool, queue, T0, (_, _) => true, (q, start, placement) =>
            {
                Assert.True(Allocator.Decide(pool, new PlacementRequest(q.GpuCount, start, start + q.Duration)).Placed);
                pool.SetLease(new LeaseHold(Guid.NewGuid(), start, start + q.Duration, placement.Gpus));
                admitted.Add(q.Id);
            });

            Assert.Equal(queue.Count, admitted.Count + blocked.Count);
            foreach (var b in blocked.Where(b => b.ProtectedStart is not null))
            {
                var at = b.ProtectedStart!.Value;
                Assert.True(Allocator.Decide(pool, new PlacementRequest(b.Request.GpuCount, at, at + b.Request.Duration)).Placed,
                    $"a backfilled request delayed {b.Request.GpuCount} GPUs protected at {at:O}");
            }

            // The first request of the queue is never passed over when it fits.
            if (!blocked.Any(b => b.Request.Id == queue[0].Id))
            {
                Assert.Equal(queue[0].Id, admitted[0]);
            }
        }, iter: 300);
    }
}
