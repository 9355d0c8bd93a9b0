using MetaCompute.Simulation.Inventory;

namespace MetaCompute.Scheduling.Tests.Simulation;

public sealed class InventoryGeneratorTests
{
    [Fact]
    public void The_same_options_give_the_same_fleet()
    {
        var a = InventoryGenerator.Generate(new InventoryOptions { TargetGpus = 4096, Seed = 3 });
        var b = InventoryGenerator.Generate(new InventoryOptions { TargetGpus = 4096, Seed = 3 });
        Assert.Equal(a.Nodes, b.Nodes);
        Assert.Equal(a.Islands, b.Islands);
        Assert.Equal(a.Racks, b.Racks);
    }

    [Fact]
    public void Another_seed_gives_another_fleet()
    {
        var a = InventoryGenerator.Generate(new InventoryOptions { TargetGpus = 16_384, Seed = 3 });
        var b = InventoryGenerator.Generate(new InventoryOptions { TargetGpus = 16_384, Seed = 4 });
        Assert.NotEqual(a.Nodes.Select(n => n.Failed), b.Nodes.Select(n => n.Failed));
    }

    [Theory]
    [InlineData(64)]
    [InlineData(4096)]
    [InlineData(100_000)]
    [InlineData(1_000_000)]
    public void The_fleet_has_the_size_asked_for(int target)
    {
        var fleet = InventoryGenerator.Generate(new InventoryOptions { TargetGpus = target });
        Assert.Equal(target / 8 * 8, fleet.GpuCount);
        Assert.Equal(4, fleet.Pools.Count);
        Assert.All(fleet.Pools, p => Assert.Contains(fleet.Nodes, n => n.PoolId == p.Id));
    }

    [Fact]
    public void Every_gpu_sits_in_exactly_one_node_rack_island_and_pool()
    {
        var fleet = InventoryGenerator.Generate(new InventoryOptions { TargetGpus = 20_000, Seed = 11 });
        var gpus = fleet.Gpus().ToList();
        Assert.Equal(gpus.Count, gpus.Select(g => g.GpuId).Distinct().Count());
        Assert.Equal(fleet.GpuCount, gpus.Count);

        var nodes = fleet.Nodes.ToDictionary(n => n.Id);
        var racks = fleet.Racks.ToDictionary(r => r.Id);
        var islands = fleet.Islands.ToDictionary(i => i.Id);
        var sites = fleet.Sites.ToDictionary(s => s.Id);
        var pools = fleet.Pools.ToDictionary(p => p.Id);
        foreach (var (_, nodeId, index) in gpus)
        {
            Assert.InRange(index, 0, 7);
            var node = nodes[nodeId];
            var rack = racks[node.RackId];
            Assert.Equal(rack.IslandId, node.IslandId);
            var island = islands[rack.IslandId];
            Assert.Equal(island.PoolId, node.PoolId);
            Assert.Equal(sites[island.SiteId].RegionId, pools[island.PoolId].RegionId);
        }

        Assert.Equal(fleet.Nodes.Count, fleet.Nodes.Select(n => n.Hostname).Distinct().Count());
    }

    [Fact]
    public void Islands_are_one_fabric_domain_of_at_most_256_nodes_spread_over_the_regions_sites()
    {
        var fleet = InventoryGenerator.Generate(new InventoryOptions { TargetGpus = 200_000 });
        var nodesPerIsland = fleet.Nodes.GroupBy(n => n.IslandId).Select(g => g.Count()).ToList();
        Assert.All(nodesPerIsland, n => Assert.InRange(n, 1, 256));
        foreach (var pool in fleet.Pools)
        {
            var sitesUsed = fleet.Islands.Where(i => i.PoolId == pool.Id).Select(i => i.SiteId).Distinct().Count();
            Assert.Equal(fleet.Sites.Count(s => s.RegionId == pool.RegionId), sitesUsed);
        }
    }

    [Fact]
    public void Names_look_like_a_real_fleet()
    {
        var fleet = InventoryGenerator.Generate(new InventoryOptions());
        Assert.Contains(fleet.Regions, r => r.Id == "us-ohio-1");
        Assert.Contains(fleet.Pools, p => p.Id == "us-ohio-1-h100");
        Assert.Matches("^oh1[ab]-h100-ib[0-9]{2}-r[0-9]{3}-n[1-4]$", fleet.Nodes.First(n => n.PoolId == "us-ohio-1-h100").Hostname);
    }

    [Fact]
    public void A_single_pool_fleet_serves_as_test_data()
    {
        var fleet = InventoryGenerator.Generate(InventoryOptions.SinglePool(64, AllocationUnit.Node));
        Assert.Single(fleet.Pools);
        Assert.Equal(8, fleet.Nodes.Count);
        Assert.DoesNotContain(fleet.Nodes, n => n.Failed);
    }
}
