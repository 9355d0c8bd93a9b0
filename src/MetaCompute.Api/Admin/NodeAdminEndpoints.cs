using FluentValidation;
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

        var rows = await (
                from n in nodes
                join r in db.Racks on n.RackId equals r.Id
                join i in db.FabricIslands on n.IslandId equals i.Id
                join s in db.Sites on i.SiteId equals s.Id
                orderby n.Id
                select new { Node = n, Rack = r.Name, Island = i.Name, Site = s.Name })
            .Take(limit + 1)
            .ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(rows, limit, x => x.Node.Id.ToString(),
            x => new NodeResponse(x.Node.Id.ToString(), x.Node.Hostname, x.Node.PoolId, x.Site, x.Island, x.Rack, x.Node.State,
                Simulation.Inventory.InventoryOptions.GpusPerNode, x.Node.UpdatedAt)));
    }
}
