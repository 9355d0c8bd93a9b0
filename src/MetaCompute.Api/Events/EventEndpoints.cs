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

public static class EventEndpoints
{
    public static RouteGroupBuilder MapEventEndpoints(this RouteGroupBuilder tenant)
    {
        tenant.MapGet("/events", ListEvents).WithTags("Events").WithName("listEvents")
            .WithSummary("The calling tenant's events in order; poll with after=<nextPageToken>").ProducesValidationProblem();
        return tenant;
    }

    /// <summary>
    /// Events in id order. An event is only shown once every transaction older than it has finished, so a smaller id
    /// can never commit after a reader moved past it. The answer's token is where to continue, even when it is empty.
    /// </summary>
    public static async Task<Ok<Page<EventResponse>>> ListEvents([AsParameters] EventsQuery query, ClaimsPrincipal user, MetaComputeDbContext db,
        CancellationToken ct)
    {
        var tenantId = user.TenantIdOf();
        Paging.TryDecode(query.After, out var after);
        var afterId = after is null ? 0 : long.Parse(after);
        var limit = Paging.Limit(query.Limit);
        var events = await db.Events
            .FromSql($"""
                SELECT * FROM events
                WHERE tenant_id = {tenantId} AND id > {afterId} AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
                ORDER BY id LIMIT {limit}
                """)
            .AsNoTracking()
            .ToListAsync(ct);
        var items = events.Select(e => new EventResponse(e.Id.ToString(), e.Type, e.OccurredAt, e.ReservationId?.ToString(), e.Data.RootElement.Clone()))
            .ToList();
        var cursor = events.Count > 0 ? events[^1].Id : afterId;
        return TypedResults.Ok(new Page<EventResponse>(items, Paging.Encode(cursor.ToString())));
    }
}
