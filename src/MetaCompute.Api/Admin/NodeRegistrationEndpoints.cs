using System.Security.Claims;
using FluentValidation;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Scheduling;
using MetaCompute.Scheduling;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Admin;

/// <summary>New racks of nodes for an existing fabric island of a pool.</summary>
public sealed record RegisterNodesRequest(string PoolId, string FabricIsland, int NodeCount, int? NodesPerRack = null);

public sealed record RegisteredNodesResponse(string PoolId, string FabricIsland, IReadOnlyList<string> NodeIds, IReadOnlyList<string> Hostnames);

public sealed class RegisterNodesRequestValidator : AbstractValidator<RegisterNodesRequest>
{
    public RegisterNodesRequestValidator()
    {
        RuleFor(r => r.PoolId).NotEmpty();
        RuleFor(r => r.FabricIsland).NotEmpty();
        RuleFor(r => r.NodeCount).InclusiveBetween(1, 1024);
        RuleFor(r => r.NodesPerRack).InclusiveBetween(1, 16);
    }
}

public static class NodeRegistrationEndpoints
{
    /// <summary>Node ids are global, so registrations in different pools take one lock to number them.</summary>
    private const long NodeNumberingLockKey = 0x4d43_4e4f_4445; // "MCNODE"

    public static RouteGroupBuilder MapNodeRegistrationEndpoints(this RouteGroupBuilder admin)
    {
        admin.MapPost("/nodes", RegisterNodes).WithTags("Admin: fleet").WithName("registerNodes")
            .WithSummary("Register new nodes of 8 GPUs, in new racks of an existing fabric island")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound);
        return admin;
    }

    /// <summary>
    /// Adds racks, nodes and their GPUs under the pool's lock and appends one change per node to the pool's log, so
    /// every replica's decider rebuilds its index to include them. Audited as <c>node.registered</c>.
    /// </summary>
    public static async Task<Results<Created<RegisteredNodesResponse>, ProblemHttpResult>> RegisterNodes(RegisterNodesRequest request,
        ClaimsPrincipal user, MetaComputeDbContext db, PoolOccupancyCache occupancy, TimeProvider time, CancellationToken ct)
    {
        var island = await db.FabricIslands.AsNoTracking().FirstOrDefaultAsync(i => i.PoolId == request.PoolId && i.Name == request.FabricIsland, ct);
        if (island is null)
        {
            return Problems.NotFound($"Fabric island '{request.FabricIsland}' of pool '{request.PoolId}'");
        }

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        return await occupancy.LockedAsync<Results<Created<RegisteredNodesResponse>, ProblemHttpResult>>(db, island.PoolId, async _ =>
        {
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({NodeNumberingLockKey})", ct);
            var now = time.GetUtcNow();
            var nextNode = (await db.Nodes.MaxAsync(n => (int?)n.Id, ct) ?? 0) + 1;
            var nextRack = (await db.Racks.MaxAsync(r => (int?)r.Id, ct) ?? 0) + 1;
            var racksInIsland = await db.Racks.CountAsync(r => r.IslandId == island.Id, ct);
            var perRack = request.NodesPerRack ?? 4;
            var nodes = new List<Node>();
            for (var n = 0; n < request.NodeCount; n++)
            {
                if (n % perRack == 0)
                {
                    db.Racks.Add(new Rack { Id = nextRack++, IslandId = island.Id, Name = $"{island.Name}-r{++racksInIsland:000}" });
                }

                var node = new Node
                {
                    Id = nextNode++, RackId = nextRack - 1, IslandId = island.Id, PoolId = island.PoolId,
                    Hostname = $"{island.Name}-r{racksInIsland:000}-n{n % perRack + 1}", State = NodeState.Healthy, UpdatedAt = now,
                };
                nodes.Add(node);
                db.Nodes.Add(node);
                db.Gpus.AddRange(Enumerable.Range(0, PoolOccupancy.GpusPerNode)
                    .Select(i => new Gpu { Id = (long)node.Id * PoolOccupancy.GpusPerNode + i, NodeId = node.Id, Index = (short)i }));
            }

            db.Append(EventTypes.NodeRegistered, null, null, now, new
            {
                poolId = island.PoolId, fabricIsland = island.Name, by = user.KeyIdOf(), nodeIds = nodes.Select(n => n.Id.ToString()),
            });
            await db.SaveChangesAsync(ct);
            foreach (var node in nodes)
            {
                await db.Database.ExecuteSqlAsync($"""
                    INSERT INTO pool_changes (pool_id, version, node_id, node_allocatable, start_at, end_at, node_ids, gpu_masks, created_at)
                    SELECT {island.PoolId}, coalesce(max(version), 0) + 1, {node.Id}, true, {now}, {now}, {Array.Empty<int>()}, {Array.Empty<short>()}, {now}
                    FROM pool_changes WHERE pool_id = {island.PoolId}
                    """, ct);
            }

            await tx.CommitAsync(ct);
            // This process's index has never seen the nodes either: rebuild it on next use.
            occupancy.Invalidate(island.PoolId);
            return TypedResults.Created($"/v1/admin/nodes?poolId={island.PoolId}",
                new RegisteredNodesResponse(island.PoolId, island.Name, nodes.Select(n => n.Id.ToString()).ToList(), nodes.Select(n => n.Hostname).ToList()));
        }, ct);
    }
}
