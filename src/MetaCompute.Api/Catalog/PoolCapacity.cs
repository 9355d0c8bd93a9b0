using MetaCompute.Api.Data;
using MetaCompute.Simulation.Inventory;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Catalog;

/// <summary>Total and healthy GPUs of a pool, counted from its nodes (a failed node's GPUs are not healthy).</summary>
public sealed record PoolCapacity(int TotalGpus, int HealthyGpus)
{
    public static readonly PoolCapacity Empty = new(0, 0);

    public static async Task<Dictionary<string, PoolCapacity>> ForPoolsAsync(MetaComputeDbContext db, IReadOnlyCollection<string>? poolIds,
        CancellationToken ct)
    {
        var nodes = db.Nodes.AsNoTracking();
        if (poolIds is not null)
        {
            nodes = nodes.Where(n => poolIds.Contains(n.PoolId));
        }

        return await nodes
            .GroupBy(n => n.PoolId)
            .Select(g => new
            {
                PoolId = g.Key,
                Total = g.Count() * InventoryOptions.GpusPerNode,
                Healthy = g.Count(n => n.State != NodeState.Failed) * InventoryOptions.GpusPerNode,
            })
            .ToDictionaryAsync(x => x.PoolId, x => new PoolCapacity(x.Total, x.Healthy), ct);
    }
}
