using System.Security.Claims;
using FluentValidation;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Offerings;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Scheduling;
using MetaCompute.Scheduling;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Catalog;

public sealed record AvailabilityQuery(DateTimeOffset? From, DateTimeOffset? To, int? StepMinutes);

/// <summary>
/// One step: GPUs the caller could book for the whole step, and the pool's healthy and total GPUs (the same names and
/// meanings as on the pool: total counts every GPU, healthy those on nodes that are not failed).
/// </summary>
public sealed record AvailabilityStep(DateTimeOffset StartAt, DateTimeOffset EndAt, int FreeGpus, int HealthyGpus, int TotalGpus);

public sealed record AvailabilityResponse(string PoolId, int StepMinutes, IReadOnlyList<AvailabilityStep> Steps);

public sealed class AvailabilityQueryValidator : AbstractValidator<AvailabilityQuery>
{
    public AvailabilityQueryValidator()
    {
        RuleFor(q => q.StepMinutes).InclusiveBetween(1, TimeSteps.MaxStepMinutes);
    }
}

public static class AvailabilityEndpoints
{
    public static RouteGroupBuilder MapAvailabilityEndpoints(this RouteGroupBuilder v1)
    {
        v1.MapGet("/pools/{poolId}/availability", GetAvailability).WithTags("Catalog").WithName("getPoolAvailability")
            .WithSummary("Free and total GPUs of a pool per time step, for plotting")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound);
        return v1;
    }

    /// <summary>
    /// Per step: GPUs free for the whole step that the caller could book (the holdback is not for sale to tenants
    /// outside the internal tier), and the pool's healthy and total GPUs.
    /// </summary>
    public static async Task<Results<Ok<AvailabilityResponse>, ValidationProblem, ProblemHttpResult>> GetAvailability(string poolId, [AsParameters] AvailabilityQuery query,
        ClaimsPrincipal user, MetaComputeDbContext db, PoolOccupancyCache occupancy, TimeProvider time, CancellationToken ct)
    {
        var pool = await db.Pools.AsNoTracking().FirstOrDefaultAsync(p => p.Id == poolId, ct);
        if (pool is null)
        {
            return Problems.NotFound($"Pool '{poolId}'");
        }

        var (from, to, step, invalid) = TimeSteps.Resolve(query.From, query.To, query.StepMinutes, time.GetUtcNow());
        if (invalid is not null)
        {
            return invalid;
        }

        var holdback = BookingRules.HoldbackFor(pool, OfferingEndpoints.TierForCaller(user));
        var capacity = (await PoolCapacity.ForPoolsAsync(db, [poolId], ct)).GetValueOrDefault(poolId, PoolCapacity.Empty);
        var steps = await occupancy.ReadAsync(db, poolId, index => TimeSteps.Cut(from, to, step)
            .Select(w => new AvailabilityStep(w.Start, w.End, Math.Max(0, Allocator.FreeGpus(index, w.Start, w.End) - holdback),
                capacity.HealthyGpus, capacity.TotalGpus))
            .ToList(), ct);
        return TypedResults.Ok(new AvailabilityResponse(poolId, (int)step.TotalMinutes, steps));
    }
}
