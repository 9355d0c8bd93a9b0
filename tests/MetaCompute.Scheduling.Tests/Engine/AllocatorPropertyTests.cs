using CsCheck;
using MetaCompute.Simulation.Inventory;
using static MetaCompute.Scheduling.Tests.Engine.Pools;

namespace MetaCompute.Scheduling.Tests.Engine;

/// <summary>Random fleets and random request streams: the invariants hold for every placement the engine makes.</summary>
public sealed class AllocatorPropertyTests
{
    private sealed record Ask(int Gpus, int FromHour, int Hours, bool SingleIsland);

    private static readonly Gen<Ask> GenAsk =
        from small in Gen.Bool
        from gpus in small ? Gen.Int[1, 7] : Gen.Int[1, 12].Select(n => n * 8)
        from fromHour in Gen.Int[0, 48]
        from hours in Gen.Int[1, 24]
        from single in Gen.Bool
        select new Ask(gpus, fromHour, hours, single);

    private static readonly Gen<(int Seed, int Gpus, double Failed, Ask[] Asks)> GenCase =
        from seed in Gen.Int[1, 10_000]
        from gpus in Gen.Int[8, 64].Select(n => n * 8)
        from failed in Gen.Double[0, 0.2]
        from asks in GenAsk.Array[1, 60]
        select (seed, gpus, failed, asks);

    [Fact]
    public void Placements_never_overlap_never_use_failed_nodes_and_keep_the_island_wish()
    {
        GenCase.Sample(c =>
        {
            var inventory = InventoryGenerator.Generate(InventoryOptions.SinglePool(c.Gpus, seed: c.Seed, failedNodeShare: c.Failed));
            var failed = inventory.Nodes.Where(n => n.Failed).Select(n => n.Id).ToHashSet();
            var islandOf = inventory.Nodes.ToDictionary(n => n.Id, n => n.IslandId);
            var pool = FromInventory(inventory);
            var held = new List<(long Gpu, DateTimeOffset Start, DateTimeOffset End)>();

            foreach (var ask in c.Asks)
            {
                var request = Request(ask.Gpus, ask.FromHour, ask.FromHour + ask.Hours, ask.SingleIsland);
                var decision = Allocator.Decide(pool, request);
                if (decision.Placement is not { } placement)
                {
                    continue;
                }

                Assert.Equal(ask.Gpus, placement.GpuCount);
                Assert.DoesNotContain(placement.Gpus, g => failed.Contains(g.NodeId));
                if (ask.SingleIsland || ask.Gpus < 8)
                {
                    Assert.Single(placement.Gpus.Select(g => islandOf[g.NodeId]).Distinct());
                }

                foreach (var gpu in placement.Gpus.SelectMany(g => g.Indices().Select(i => (long)g.NodeId * 8 + i)))
                {
                    Assert.DoesNotContain(held, h => h.Gpu == gpu && h.Start < request.End && request.Start < h.End);
                    held.Add((gpu, request.Start, request.End));
                }

                pool.SetLease(new LeaseHold(Guid.NewGuid(), request.Start, request.End, placement.Gpus));
            }
        }, iter: 200);
    }

    [Fact]
    public void The_same_input_gives_the_same_placements()
    {
        GenCase.Sample(c =>
        {
            var inventory = InventoryGenerator.Generate(InventoryOptions.SinglePool(c.Gpus, seed: c.Seed, failedNodeShare: c.Failed));
            Assert.Equal(Run(inventory, c.Asks), Run(inventory, c.Asks));
        }, iter: 100);

        static List<string> Run(Inventory inventory, Ask[] asks)
        {
            var pool = FromInventory(inventory);
            var results = new List<string>();
            var n = 0;
            foreach (var ask in asks)
            {
                var request = Request(ask.Gpus, ask.FromHour, ask.FromHour + ask.Hours, ask.SingleIsland);
                var decision = Allocator.Decide(pool, request);
                results.Add(decision.Placement is { } p ? string.Join(',', p.Gpus) : decision.Failure.ToString()!);
                if (decision.Placement is { } placement)
                {
                    pool.SetLease(new LeaseHold(new Guid(n++, 0, 0, new byte[8]), request.Start, request.End, placement.Gpus));
                }
            }

            return results;
        }
    }

    [Fact]
    public void A_request_that_fits_in_an_empty_pool_is_always_placed()
    {
        Gen.Select(Gen.Int[1, 10_000], Gen.Int[2, 64], Gen.Int[1, 7]).Sample((seed, nodes, small) =>
        {
            var inventory = InventoryGenerator.Generate(InventoryOptions.SinglePool(nodes * 8, seed: seed));
            var pool = FromInventory(inventory);
            Assert.True(Allocator.Decide(pool, Request(nodes * 8, 0, 1)).Placed);
            Assert.True(Allocator.Decide(pool, Request(small, 0, 1)).Placed);
        }, iter: 100);
    }
}
