namespace MetaCompute.Simulation.Inventory;

/// <summary>
/// Generates a deterministic fleet: regions → sites → fabric islands → racks → nodes of 8 GPUs.
/// Each pool (one GPU model in one region) gets its weighted share of the target, split into islands
/// spread round-robin over the region's sites. Same options, same fleet.
/// </summary>
public static class InventoryGenerator
{
    public static Inventory Generate(InventoryOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.TargetGpus, InventoryOptions.GpusPerNode);
        var random = new Random(options.Seed);
        var poolPlans = options.Regions.SelectMany(r => r.Pools.Select(p => (Region: r, Plan: p))).ToList();
        var nodeShares = SplitNodes(options.TargetGpus / InventoryOptions.GpusPerNode, poolPlans.Select(p => p.Plan.Weight).ToList());

        var regions = new List<RegionInfo>();
        var sites = new List<SiteInfo>();
        var pools = new List<PoolInfo>();
        var islands = new List<IslandInfo>();
        var racks = new List<RackInfo>();
        var nodes = new List<NodeInfo>(options.TargetGpus / InventoryOptions.GpusPerNode);
        var siteIds = new Dictionary<(string Region, string Site), int>();

        foreach (var region in options.Regions)
        {
            regions.Add(new RegionInfo(region.Id, region.DisplayName));
            foreach (var site in region.Sites)
            {
                var siteInfo = new SiteInfo(sites.Count + 1, region.Id, site);
                sites.Add(siteInfo);
                siteIds[(region.Id, site)] = siteInfo.Id;
            }
        }

        for (var p = 0; p < poolPlans.Count; p++)
        {
            var (region, plan) = poolPlans[p];
            var model = GpuModels.Get(plan.GpuModelId);
            var pool = new PoolInfo(PoolId(region.Id, model), region.Id, model.Id, plan.AllocationUnit);
            pools.Add(pool);

            var poolNodes = nodeShares[p];
            var baseIslandNodes = RoundToRacks(Math.Clamp(poolNodes / 4, model.NodesPerRack * 2, options.MaxIslandNodes), model.NodesPerRack);
            var placed = 0;
            var islandNumber = 0;
            while (placed < poolNodes)
            {
                // ±25 % jitter so islands differ in size the way real build-outs do.
                var jitter = 1 + (random.NextDouble() - 0.5) / 2;
                var islandNodes = Math.Min(poolNodes - placed,
                    Math.Min(options.MaxIslandNodes, RoundToRacks((int)(baseIslandNodes * jitter), model.NodesPerRack)));
                var siteName = region.Sites[islandNumber % region.Sites.Count];
                var island = new IslandInfo(islands.Count + 1, siteIds[(region.Id, siteName)], pool.Id,
                    $"{siteName}-{ShortModel(model)}-ib{islandNumber + 1:00}");
                islands.Add(island);

                for (var r = 0; r * model.NodesPerRack < islandNodes; r++)
                {
                    var rack = new RackInfo(racks.Count + 1, island.Id, $"{island.Name}-r{r + 1:000}");
                    racks.Add(rack);
                    var nodesInRack = Math.Min(model.NodesPerRack, islandNodes - r * model.NodesPerRack);
                    for (var n = 0; n < nodesInRack; n++)
                    {
                        var failed = random.NextDouble() < options.FailedNodeShare;
                        nodes.Add(new NodeInfo(nodes.Count + 1, rack.Id, island.Id, pool.Id, $"{rack.Name}-n{n + 1}", failed));
                    }
                }

                placed += islandNodes;
                islandNumber++;
            }
        }

        return new Inventory { Regions = regions, Sites = sites, Pools = pools, Islands = islands, Racks = racks, Nodes = nodes };
    }

    public static string PoolId(string regionId, GpuModelSpec model) => $"{regionId}-{ShortModel(model)}";

    private static string ShortModel(GpuModelSpec model) => model.Id.Split('-')[0];

    private static int RoundToRacks(int nodes, int nodesPerRack) => Math.Max(nodesPerRack, nodes / nodesPerRack * nodesPerRack);

    /// <summary>Splits whole nodes by weight; the last pool takes the rounding remainder so the total is exact.</summary>
    private static int[] SplitNodes(int totalNodes, IReadOnlyList<double> weights)
    {
        var sum = weights.Sum();
        var shares = new int[weights.Count];
        for (var i = 0; i < weights.Count - 1; i++)
        {
            shares[i] = Math.Max(1, (int)(totalNodes * weights[i] / sum));
        }

        shares[^1] = totalNodes - shares.Take(weights.Count - 1).Sum();
        if (shares[^1] < 1)
        {
            throw new ArgumentException($"{totalNodes} nodes are too few for {weights.Count} pools.");
        }

        return shares;
    }
}
