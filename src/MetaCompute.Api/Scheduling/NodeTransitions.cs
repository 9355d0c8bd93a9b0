using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using MetaCompute.Api.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Scheduling;

/// <summary>A node state change: which states it leaves, where it goes, what it is called in the audit trail.</summary>
public sealed record NodeTransition(NodeState[] From, NodeState To, string EventType)
{
    public static readonly NodeTransition Drain = new([NodeState.Healthy], NodeState.Draining, EventTypes.NodeDrained);
    public static readonly NodeTransition Undrain = new([NodeState.Draining], NodeState.Healthy, EventTypes.NodeUndrained);
    public static readonly NodeTransition Fail = new([NodeState.Healthy, NodeState.Draining], NodeState.Failed, EventTypes.NodeFailed);
    public static readonly NodeTransition Restore = new([NodeState.Failed], NodeState.Healthy, EventTypes.NodeRestored);
}

public enum NodeChangeStatus
{
    Changed,
    NotFound,
    InvalidState,
}

public static class NodeTransitions
{
    /// <summary>
    /// Moves a node from one state to another under its pool's lock: appends the change to the pool's log (so every
    /// replica's decider stops or resumes placing on it), re-homes its leases when it fails, and records an audit event
    /// (who, before, after, outcome and <paramref name="details"/>), in one transaction. A failure may carry when its
    /// repair is due (the fault model's); the scheduler restores the node then. Any other starting state is
    /// <see cref="NodeChangeStatus.InvalidState"/>: nothing changes silently.
    /// </summary>
    public static async Task<(NodeChangeStatus Status, string? Detail)> ApplyAsync(MetaComputeDbContext db, PoolOccupancyCache occupancy, int nodeId,
        NodeTransition transition, string? by, DateTimeOffset now, object? details, CancellationToken ct, DateTimeOffset? repairDueAt = null)
    {
        var poolId = await db.Nodes.Where(n => n.Id == nodeId).Select(n => n.PoolId).FirstOrDefaultAsync(ct);
        if (poolId is null)
        {
            return (NodeChangeStatus.NotFound, $"Node '{nodeId}' was not found.");
        }

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        return await occupancy.LockedAsync<(NodeChangeStatus, string?)>(db, poolId, async index =>
        {
            var node = await db.Nodes.SingleAsync(n => n.Id == nodeId, ct);
            if (!transition.From.Contains(node.State))
            {
                return (NodeChangeStatus.InvalidState, $"Node {node.Hostname} is {WireEnum.Name(node.State)}; only a " +
                    $"{string.Join(" or ", transition.From.Select(WireEnum.Name))} node can become {WireEnum.Name(transition.To)}.");
            }

            var before = node.State;
            node.State = transition.To;
            node.RepairDueAt = transition.To == NodeState.Failed ? repairDueAt : null;
            node.UpdatedAt = now;
            var allocatable = transition.To == NodeState.Healthy;
            // The node closes before its leases move, so no lease moves onto it.
            index.SetAllocatable(nodeId, allocatable);
            object? outcome = null;
            if (transition.To == NodeState.Failed)
            {
                var (migrated, degraded) = await FailureRehoming.RehomeAsync(db, index, poolId, nodeId, now, ct);
                outcome = new { migratedLeases = migrated, degradedLeases = degraded };
            }

            db.Append(transition.EventType, null, null, now, new
            {
                nodeId = nodeId.ToString(), node.Hostname, poolId, by, before = WireEnum.Name(before), after = WireEnum.Name(transition.To), outcome, details,
            });
            await db.SaveChangesAsync(ct);
            await db.Database.ExecuteSqlAsync($"""
                INSERT INTO pool_changes (pool_id, version, node_id, node_allocatable, start_at, end_at, node_ids, gpu_masks, created_at)
                SELECT {poolId}, coalesce(max(version), 0) + 1, {nodeId}, {allocatable}, {now}, {now}, {Array.Empty<int>()}, {Array.Empty<short>()}, {now}
                FROM pool_changes WHERE pool_id = {poolId}
                """, ct);
            await PoolOccupancyCache.CommitAsync(db, tx, poolId, index, ct);
            return (NodeChangeStatus.Changed, null);
        }, ct);
    }
}
