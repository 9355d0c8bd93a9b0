using System.Collections.Concurrent;
using MetaCompute.Api.Data;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Scheduling;

public sealed record NodePlace(string Hostname, string FabricIsland, string Rack);

/// <summary>
/// Where each node sits (hostname, island, rack), read once per pool per process, so answering a booking does not
/// need another query. Placement names never change for a node; a node registered later is read on first sight.
/// </summary>
public sealed class NodeDirectory
{
    private readonly ConcurrentDictionary<int, NodePlace> _nodes = new();

    public async Task<NodePlace> GetAsync(MetaComputeDbContext db, int nodeId, CancellationToken ct)
    {
        if (_nodes.TryGetValue(nodeId, out var place))
        {
            return place;
        }

        var poolId = await db.Nodes.Where(n => n.Id == nodeId).Select(n => n.PoolId).SingleAsync(ct);
        var places = await (
                from n in db.Nodes.AsNoTracking()
                join r in db.Racks on n.RackId equals r.Id
                join i in db.FabricIslands on n.IslandId equals i.Id
                where n.PoolId == poolId
                select new { n.Id, n.Hostname, Island = i.Name, Rack = r.Name })
            .ToListAsync(ct);
        foreach (var p in places)
        {
            _nodes[p.Id] = new NodePlace(p.Hostname, p.Island, p.Rack);
        }

        return _nodes[nodeId];
    }
}
