using System.Security.Claims;
using System.Text.Json;
using FluentValidation;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Events;

public sealed record EventsQuery(string? After, int? Limit);

/// <summary>The operators' audit trail: every event, optionally of one type (e.g. <c>node.failed</c>).</summary>
public sealed record AuditQuery(string? After, int? Limit, string? Type);

public sealed record EventResponse(string Id, string Type, DateTimeOffset OccurredAt, string? ReservationId, JsonElement Data);

public sealed class EventsQueryValidator : AbstractValidator<EventsQuery>
{
    public EventsQueryValidator()
    {
        RuleFor(q => q.Limit).InclusiveBetween(1, Paging.MaxLimit);
        RuleFor(q => q.After).Must(a => Paging.TryDecode(a, out var key) && (key is null || long.TryParse(key, out _)))
            .WithMessage("Use a nextPageToken from an earlier answer as 'after'.");
    }
}

public sealed class AuditQueryValidator : AbstractValidator<AuditQuery>
{
    public AuditQueryValidator()
    {
        RuleFor(q => q.Limit).InclusiveBetween(1, Paging.MaxLimit);
        RuleFor(q => q.After).Must(a => Paging.TryDecode(a, out var key) && (key is null || long.TryParse(key, out _)))
            .WithMessage("Use a nextPageToken from an earlier answer as 'after'.");
        RuleFor(q => q.Type).MaximumLength(64);
    }
}

public static class EventEndpoints
{
    public static RouteGroupBuilder MapEventEndpoints(this RouteGroupBuilder tenant)
    {
        tenant.MapGet("/events", ListEvents).WithTags("Events").WithName("listEvents")
            .WithSummary("The calling tenant's events in order; poll with after=<nextPageToken>").ProducesValidationProblem();
        return tenant;
    }

    public static RouteGroupBuilder MapAuditEndpoints(this RouteGroupBuilder admin)
    {
        admin.MapGet("/events", ListAllEvents).WithTags("Admin: audit").WithName("listAuditEvents")
            .WithSummary("Every event in order — operators' actions with who, before and after, and the scheduler's; poll with after=<nextPageToken>")
            .ProducesValidationProblem();
        return admin;
    }

    public static Task<Ok<Page<EventResponse>>> ListEvents([AsParameters] EventsQuery query, ClaimsPrincipal user, MetaComputeDbContext db,
        CancellationToken ct) =>
        ReadAsync(db, user.TenantIdOf(), null, query.After, query.Limit, ct);

    public static Task<Ok<Page<EventResponse>>> ListAllEvents([AsParameters] AuditQuery query, MetaComputeDbContext db, CancellationToken ct) =>
        ReadAsync(db, null, query.Type, query.After, query.Limit, ct);

    /// <summary>
    /// Events in id order. An event is only shown once every transaction older than it has finished, so a smaller id
    /// can never commit after a reader moved past it. The answer's token is where to continue, even when it is empty.
    /// </summary>
    private static async Task<Ok<Page<EventResponse>>> ReadAsync(MetaComputeDbContext db, Guid? tenantId, string? type, string? afterToken, int? limitAsked,
        CancellationToken ct)
    {
        Paging.TryDecode(afterToken, out var after);
        var afterId = after is null ? 0 : long.Parse(after);
        var limit = Paging.Limit(limitAsked);
        // Two statements rather than one with optional filters, so the tenant's feed keeps its (tenant_id, id) index.
        var rows = tenantId is { } tenant
            ? db.Events.FromSql($"""
                SELECT * FROM events
                WHERE tenant_id = {tenant} AND id > {afterId} AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
                ORDER BY id LIMIT {limit}
                """)
            : db.Events.FromSql($"""
                SELECT * FROM events
                WHERE ({type}::text IS NULL OR type = {type}) AND id > {afterId} AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
                ORDER BY id LIMIT {limit}
                """);
        var events = await rows.AsNoTracking().ToListAsync(ct);
        var items = events.Select(e => new EventResponse(e.Id.ToString(), e.Type, e.OccurredAt, e.ReservationId?.ToString(), e.Data.RootElement.Clone()))
            .ToList();
        var cursor = events.Count > 0 ? events[^1].Id : afterId;
        return TypedResults.Ok(new Page<EventResponse>(items, Paging.Encode(cursor.ToString())));
    }
}
