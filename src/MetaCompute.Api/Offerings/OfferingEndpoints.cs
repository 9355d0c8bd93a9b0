using System.Security.Claims;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Scheduling;
using MetaCompute.Scheduling;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Offerings;

/// <summary>Concrete, priced, bookable windows (like EC2 Capacity Block offerings), each with a short-lived offering id.</summary>
public static class OfferingEndpoints
{
    /// <summary>How far past the earliest start the search looks when the caller gives no latest start.</summary>
    public static readonly TimeSpan DefaultSearchSpan = TimeSpan.FromDays(7);

    public static RouteGroupBuilder MapOfferingEndpoints(this RouteGroupBuilder v1)
    {
        v1.MapGet("/offerings", ListOfferings).WithTags("Offerings").WithName("listOfferings")
            .WithSummary("Find bookable reserved blocks: exact windows with prices and an offering id to book")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound);
        return v1;
    }

    public static async Task<Results<Ok<Page<OfferingResponse>>, ProblemHttpResult, ValidationProblem>> ListOfferings(
        [AsParameters] OfferingsQuery query, ClaimsPrincipal user, MetaComputeDbContext db, PoolOccupancyCache occupancy,
        OfferingTokens tokens, TimeProvider time, CancellationToken ct)
    {
        var pool = query.PoolId is not null
            ? await db.Pools.AsNoTracking().FirstOrDefaultAsync(p => p.Id == query.PoolId, ct)
            : await db.Pools.AsNoTracking().FirstOrDefaultAsync(p => p.RegionId == query.Region && p.GpuModelId == query.GpuModel, ct);
        if (pool is null)
        {
            return Problems.NotFound(query.PoolId is not null ? $"Pool '{query.PoolId}'" : $"A {query.GpuModel} pool in '{query.Region}'");
        }

        var now = time.GetUtcNow();
        var errors = new Dictionary<string, string[]>();
        BookingRules.CheckGpuCount(pool, query.GpuCount!.Value, "gpuCount", errors);
        if (query.DurationHours < pool.Rules.MinDurationHours || query.DurationHours > pool.Rules.MaxDurationHours)
        {
            errors["durationHours"] = [$"This pool sells between {pool.Rules.MinDurationHours} and {pool.Rules.MaxDurationHours} hours."];
        }

        var horizon = now.AddDays(pool.Rules.MaxStartAheadDays);
        var earliest = BookingRules.TruncateToSecond(query.EarliestStart is { } e && e > now ? e : now);
        var latest = query.LatestStart ?? earliest + DefaultSearchSpan;
        if (earliest > horizon)
        {
            errors["earliestStart"] = [$"This pool takes reservations up to {pool.Rules.MaxStartAheadDays} days ahead."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors, title: "The request is not valid.", type: Problems.ValidationFailedType);
        }

        var tier = TierForCaller(user);
        var search = new WindowSearch(query.GpuCount.Value, TimeSpan.FromHours(query.DurationHours!.Value), earliest, latest < horizon ? latest : horizon,
            query.SingleFabricIsland ?? false, BookingRules.HoldbackFor(pool, tier), query.Limit ?? 10);
        var windows = await occupancy.ReadAsync(db, pool.Id, index => BookableWindows.Find(index, search), ct);
        var offerings = await ToOfferingsAsync(db, tokens, pool, tier, windows, search.SingleFabricIsland, now, ct);
        return TypedResults.Ok(new Page<OfferingResponse>(offerings, null));
    }

    /// <summary>Offerings are reserved blocks, except for first-party tenants, whose capacity is internal.</summary>
    public static ReservationTier TierForCaller(ClaimsPrincipal user) =>
        user.IsInRole(CallerClaims.TenantRole) && user.TenantKindOf() == TenantKind.Internal ? ReservationTier.Internal : ReservationTier.Reserved;

    public static async Task<List<OfferingResponse>> ToOfferingsAsync(MetaComputeDbContext db, OfferingTokens tokens, Pool pool, ReservationTier tier,
        IReadOnlyList<BookableWindow> windows, bool singleFabricIsland, DateTimeOffset now, CancellationToken ct)
    {
        var islandIds = windows.SelectMany(w => w.Placement.FabricIslandIds).Distinct().ToList();
        var islandNames = await db.FabricIslands.AsNoTracking().Where(i => islandIds.Contains(i.Id)).ToDictionaryAsync(i => i.Id, i => i.Name, ct);
        var expires = now + OfferingTokens.Validity;
        var offerings = new List<OfferingResponse>();
        foreach (var window in windows)
        {
            var gpuCount = window.Placement.GpuCount;
            var price = Pricing.PricePerGpuHour(pool.Prices, tier, window.End - window.Start, utilisation: 0);
            var id = await tokens.IssueAsync(new OfferingTerms(pool.Id, gpuCount, window.Start, window.End, singleFabricIsland, expires), ct);
            offerings.Add(new OfferingResponse(id, pool.Id, tier, window.Start, window.End, gpuCount,
                window.Placement.FabricIslandIds.Select(i => islandNames[i]).ToList(), price,
                Pricing.Total(price, gpuCount, window.Start, window.End), Pricing.Currency, expires));
        }

        return offerings;
    }
}
