using MetaCompute.Api.Data;
using MetaCompute.Scheduling;
using MetaCompute.Simulation.Inventory;

namespace MetaCompute.Api.Reservations;

/// <summary>A request resolved against its pool's rules: the exact window, tier and count to place.</summary>
public sealed record BookingSpec(Pool Pool, ReservationTier Tier, int GpuCount, DateTimeOffset StartAt, DateTimeOffset EndAt, bool SingleFabricIsland,
    bool StartsNow = false, bool EndAsked = false)
{
    /// <summary>
    /// The window to place when the booking is decided at <paramref name="now"/>. A booking for now starts then, not at
    /// the second it was asked in, so GPUs released earlier in that second are free for it; it keeps its duration, or
    /// the end it asked for.
    /// </summary>
    public (DateTimeOffset Start, DateTimeOffset End) WindowAt(DateTimeOffset now) =>
        StartsNow ? (now, EndAsked ? EndAt : now + (EndAt - StartAt)) : (StartAt, EndAt);
}

/// <summary>
/// Checks a request against the pool's rules — data, not shape, so it runs after the validator — and names the
/// field at fault for each failure.
/// </summary>
public static class BookingRules
{
    /// <summary>A start this close to now counts as now: clocks differ and requests take time to arrive.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(1);

    /// <summary>On-demand and spot capacity starts now; anything later is a reserved block.</summary>
    public static readonly TimeSpan ImmediateWindow = TimeSpan.FromMinutes(5);

    public static (BookingSpec? Spec, Dictionary<string, string[]> Errors) Resolve(CreateReservationRequest request, Pool pool, TenantKind tenantKind,
        DateTimeOffset now)
    {
        var errors = new Dictionary<string, string[]>();
        var tier = request.Tier ?? (tenantKind == TenantKind.Internal ? ReservationTier.Internal
            : request.StartAt is null ? ReservationTier.OnDemand : ReservationTier.Reserved);
        if (tier == ReservationTier.Internal && tenantKind != TenantKind.Internal)
        {
            errors["tier"] = ["The internal tier is for first-party tenants."];
        }

        var gpuCount = request.GpuCount!.Value;
        CheckGpuCount(pool, gpuCount, "gpuCount", errors);

        // A booking for now is checked from the current whole second; it starts when it is granted (BookingSpec.WindowAt).
        var startsNow = request.StartAt is not { } s || s <= now;
        var start = TruncateToSecond(startsNow ? now : request.StartAt!.Value);
        if (request.StartAt is { } asked)
        {
            if (asked < now - ClockSkew)
            {
                errors["startAt"] = ["startAt must not be in the past."];
            }
            else if (asked > now + TimeSpan.FromDays(pool.Rules.MaxStartAheadDays))
            {
                errors["startAt"] = [$"This pool takes reservations up to {pool.Rules.MaxStartAheadDays} days ahead."];
            }
            else if (tier is ReservationTier.OnDemand or ReservationTier.Spot && asked > now + ImmediateWindow)
            {
                errors["startAt"] = ["On-demand and spot capacity starts now; book a reserved block for a later start."];
            }
        }

        var end = request.EndAt is { } e ? TruncateToSecond(e) : start.AddHours(request.DurationHours!.Value);
        var durationField = request.EndAt is null ? "durationHours" : "endAt";
        var hours = (end - start).TotalHours;
        if (end <= start)
        {
            errors[durationField] = ["The reservation must end after it starts."];
        }
        else if (hours < pool.Rules.MinDurationHours || hours > pool.Rules.MaxDurationHours)
        {
            errors[durationField] = [$"This pool sells between {pool.Rules.MinDurationHours} and {pool.Rules.MaxDurationHours} hours."];
        }
        else if (tier == ReservationTier.Reserved && (end - start).Ticks % TimeSpan.TicksPerHour != 0)
        {
            errors[durationField] = ["Reserved blocks last a whole number of hours."];
        }

        var single = request.Placement?.SingleFabricIsland ?? false;
        return errors.Count == 0 ? (new BookingSpec(pool, tier, gpuCount, start, end, single, startsNow, request.EndAt is not null), errors) : (null, errors);
    }

    public static void CheckGpuCount(Pool pool, int gpuCount, string field, Dictionary<string, string[]> errors)
    {
        if (gpuCount < pool.Rules.MinGpus || gpuCount > pool.Rules.MaxGpus)
        {
            errors[field] = [$"This pool sells between {pool.Rules.MinGpus} and {pool.Rules.MaxGpus} GPUs per reservation."];
        }
        else if ((gpuCount >= PoolOccupancy.GpusPerNode || pool.AllocationUnit == AllocationUnit.Node) && gpuCount % PoolOccupancy.GpusPerNode != 0)
        {
            errors[field] = ["Requests of 8 GPUs or more, and every request in a whole-node pool, take whole nodes: use a multiple of 8."];
        }
    }

    public static int HoldbackFor(Pool pool, ReservationTier tier) => tier == ReservationTier.Internal ? 0 : pool.Rules.HoldbackGpus;

    /// <summary>
    /// Where something the scheduler or an operator starts, asked for <paramref name="asked"/> (or now), begins: whole
    /// seconds, never before now rounded up, so GPUs released a moment ago count as free from then rather than from the
    /// start of that second (admitting a queued request right after a cancellation, a maintenance window from now).
    /// </summary>
    public static DateTimeOffset StartAtOrAfter(DateTimeOffset? asked, DateTimeOffset now)
    {
        var earliest = TruncateToSecond(now.AddTicks(TimeSpan.TicksPerSecond - 1));
        return asked is { } a && TruncateToSecond(a) > earliest ? TruncateToSecond(a) : earliest;
    }

    public static DateTimeOffset TruncateToSecond(DateTimeOffset t) =>
        new(t.UtcTicks - t.UtcTicks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
}
