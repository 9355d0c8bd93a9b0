using System.Security.Claims;
using FluentValidation;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Events;
using MetaCompute.Api.Scheduling;
using MetaCompute.Scheduling;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Admin;

public sealed record ListNodesQuery(string? PoolId, string? State, int? Limit, string? PageToken);

public sealed record NodeResponse(string Id, string Hostname, string PoolId, string Site, string FabricIsland, string Rack, NodeState State,
    int GpuCount, DateTimeOffset UpdatedAt);

public sealed class ListNodesQueryValidator : AbstractValidator<ListNodesQuery>
{
    public ListNodesQueryValidator()
    {
        RuleFor(q => q.Limit).InclusiveBetween(1, Paging.MaxLimit);
        RuleFor(q => q.State).Must(s => s is null || WireEnum.TryParse<NodeState>(s, out _))
            .WithMessage($"Use one of: {WireEnum.Allowed<NodeState>()}.");
        RuleFor(q => q.PageToken).Must(t => Paging.TryDecode(t, out var key) && (key is null || int.TryParse(key, out _)))
            .WithMessage("The page token is not one this API issued.");
    }
}

public static class NodeAdminEndpoints
{
    public static RouteGroupBuilder MapNodeAdminEndpoints(this RouteGroupBuilder admin)
    {
        admin.MapGet("/nodes", ListNodes).WithTags("Admin: fleet").WithName("listNodes")
            .WithSummary("List nodes, optionally by pool and state").ProducesValidationProblem();
        admin.MapPost("/nodes/{nodeId:int}/drain", DrainNode).WithTags("Admin: fleet").WithName("drainNode")
            .WithSummary("Close a node to new allocations; its leases run to their end")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        admin.MapPost("/nodes/{nodeId:int}/undrain", UndrainNode).WithTags("Admin: fleet").WithName("undrainNode")
            .WithSummary("Open a drained node to new allocations again")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        admin.MapPost("/nodes/{nodeId:int}/fail", FailNode).WithTags("Admin: fleet").WithName("failNode")
            .WithSummary("Mark a node failed: its leases move to spare GPUs (same island first) or are marked degraded")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        admin.MapPost("/nodes/{nodeId:int}/restore", RestoreNode).WithTags("Admin: fleet").WithName("restoreNode")
            .WithSummary("Return a repaired node to service")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        return admin;
    }

    public static async Task<Ok<Page<NodeResponse>>> ListNodes([AsParameters] ListNodesQuery query, MetaComputeDbContext db, CancellationToken ct)
    {
        Paging.TryDecode(query.PageToken, out var after);
        var limit = Paging.Limit(query.Limit);
        var nodes = db.Nodes.AsNoTracking();
        if (query.PoolId is not null)
        {
            nodes = nodes.Where(n => n.PoolId == query.PoolId);
        }

        if (WireEnum.TryParse<NodeState>(query.State, out var state))
        {
            nodes = nodes.Where(n => n.State == state);
        }

        if (after is not null)
        {
            var afterId = int.Parse(after);
            nodes = nodes.Where(n => n.Id > afterId);
        }

        var rows = await Rows(db, nodes).OrderBy(x => x.Node.Id).Take(limit + 1).ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(rows, limit, x => x.Node.Id.ToString(), ToResponse));
    }

    /// <summary>A node with the names of where it sits; an initializer, not a constructor, so EF can order by it.</summary>
    private sealed class NodeRow
    {
        public required Node Node { get; init; }
        public required string Rack { get; init; }
        public required string Island { get; init; }
        public required string Site { get; init; }
    }

    private static IQueryable<NodeRow> Rows(MetaComputeDbContext db, IQueryable<Node> nodes) =>
        from n in nodes
        join r in db.Racks on n.RackId equals r.Id
        join i in db.FabricIslands on n.IslandId equals i.Id
        join s in db.Sites on i.SiteId equals s.Id
        select new NodeRow { Node = n, Rack = r.Name, Island = i.Name, Site = s.Name };

    private static NodeResponse ToResponse(NodeRow x) => new(x.Node.Id.ToString(), x.Node.Hostname, x.Node.PoolId, x.Site, x.Island, x.Rack,
        x.Node.State, Simulation.Inventory.InventoryOptions.GpusPerNode, x.Node.UpdatedAt);

    public const string InvalidNodeStateType = Problems.BaseUri + "invalid-node-state";

    public static Task<Results<Ok<NodeResponse>, ProblemHttpResult>> DrainNode(int nodeId, ClaimsPrincipal user, MetaComputeDbContext db,
        PoolOccupancyCache occupancy, TimeProvider time, CancellationToken ct) =>
        ChangeStateAsync(nodeId, NodeTransition.Drain, user, db, occupancy, time, ct);

    public static Task<Results<Ok<NodeResponse>, ProblemHttpResult>> UndrainNode(int nodeId, ClaimsPrincipal user, MetaComputeDbContext db,
        PoolOccupancyCache occupancy, TimeProvider time, CancellationToken ct) =>
        ChangeStateAsync(nodeId, NodeTransition.Undrain, user, db, occupancy, time, ct);

    public static Task<Results<Ok<NodeResponse>, ProblemHttpResult>> FailNode(int nodeId, ClaimsPrincipal user, MetaComputeDbContext db,
        PoolOccupancyCache occupancy, TimeProvider time, CancellationToken ct) =>
        ChangeStateAsync(nodeId, NodeTransition.Fail, user, db, occupancy, time, ct);

    public static Task<Results<Ok<NodeResponse>, ProblemHttpResult>> RestoreNode(int nodeId, ClaimsPrincipal user, MetaComputeDbContext db,
        PoolOccupancyCache occupancy, TimeProvider time, CancellationToken ct) =>
        ChangeStateAsync(nodeId, NodeTransition.Restore, user, db, occupancy, time, ct);

    private static async Task<Results<Ok<NodeResponse>, ProblemHttpResult>> ChangeStateAsync(int nodeId, NodeTransition transition, ClaimsPrincipal user,
        MetaComputeDbContext db, PoolOccupancyCache occupancy, TimeProvider time, CancellationToken ct)
    {
        var (status, detail) = await NodeTransitions.ApplyAsync(db, occupancy, nodeId, transition, user.KeyIdOf(), time.GetUtcNow(), null, ct);
        return status switch
        {
            NodeChangeStatus.NotFound => Problems.NotFound($"Node '{nodeId}'"),
            NodeChangeStatus.InvalidState => TypedResults.Problem(title: "Invalid node state", statusCode: StatusCodes.Status409Conflict,
                type: InvalidNodeStateType, detail: detail),
            _ => TypedResults.Ok(ToResponse(await Rows(db, db.Nodes.AsNoTracking().Where(n => n.Id == nodeId)).SingleAsync(ct))),
        };
    }
}
