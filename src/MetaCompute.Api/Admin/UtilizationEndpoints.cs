using FluentValidation;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Scheduling;
using MetaCompute.Scheduling;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Admin;

public sealed record UtilizationQuery(string? PoolId, DateTimeOffset? From, DateTimeOffset? To, int? StepMinutes);

/// <summary>One step: allocated + free + held back + unavailable (idle on draining or failed nodes, or in maintenance) = total.</summary>
public sealed record UtilizationStep(DateTimeOffset StartAt, DateTimeOffset EndAt, int AllocatedGpus, int FreeGpus, int HeldBackGpus,
    int UnavailableGpus, int TotalGpus);

public sealed record UtilizationResponse(string PoolId, int StepMinutes, IReadOnlyList<UtilizationStep> Steps);

public sealed class UtilizationQueryValidator : AbstractValidator<UtilizationQuery>
{
    public UtilizationQueryValidator()
    {
        RuleFor(q => q.PoolId).NotEmpty();
        RuleFor(q => q.StepMinutes).InclusiveBetween(1, TimeSteps.MaxStepMinutes);
    }
}

public static class UtilizationEndpoints
{
    public static RouteGroupBuilder MapUtilizationEndpoints(this RouteGroupBuilder admin)
    {
        admin.MapGet("/utilization", GetUtilization).WithTags("Admin: fleet").WithName("getUtilization")
            .WithSummary("Allocated, free, held-back and unavailable GPUs of a pool per time step")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound);
        return admin;
    }

    public static async Task<Results<Ok<UtilizationResponse>, ValidationProblem, ProblemHttpResult>> GetUtilization([AsParameters] UtilizationQuery query,
        MetaComputeDbContext db, PoolOccupancyCache occupancy, TimeProvider time, CancellationToken ct)
    {
        var pool = await db.Pools.AsNoTracking().FirstOrDefaultAsync(p => p.Id == query.PoolId, ct);
        if (pool is null)
        {
            return Problems.NotFound($"Pool '{query.PoolId}'");
        }

        var (from, to, step, invalid) = TimeSteps.Resolve(query.From, query.To, query.StepMinutes, time.GetUtcNow());
        if (invalid is not null)
        {
            return invalid;
        }

        var period = new NpgsqlTypes.NpgsqlRange<DateTime>(from.UtcDateTime, true, to.UtcDateTime, false);
        var windows = await db.MaintenanceWindows.AsNoTracking().Where(w => w.PoolId == pool.Id && w.Period.Overlaps(period))
            .Select(w => new { w.NodeId, w.Period }).ToListAsync(ct);
        var steps = await occupancy.ReadAsync(db, pool.Id, index => TimeSteps.Cut(from, to, step).Select(w =>
        {
            var (busy, allocatableFree, closedIdle) = Allocator.Usage(index, w.Start, w.End);
            var heldBack = Math.Min(pool.Rules.HoldbackGpus, allocatableFree);
            // The index holds a maintenance window as busy GPUs: a node in maintenance at any time in the step is
            // unavailable for it, not allocated.
            var inMaintenance = PoolOccupancy.GpusPerNode * windows
                .Where(m => m.Period.LowerBound < w.End.UtcDateTime && m.Period.UpperBound > w.Start.UtcDateTime).Select(m => m.NodeId).Distinct().Count();
            inMaintenance = Math.Min(inMaintenance, busy);
            return new UtilizationStep(w.Start, w.End, busy - inMaintenance, allocatableFree - heldBack, heldBack, closedIdle + inMaintenance,
                index.NodeCount * PoolOccupancy.GpusPerNode);
        }).ToList(), ct);
        return TypedResults.Ok(new UtilizationResponse(pool.Id, (int)step.TotalMinutes, steps));
    }
}
