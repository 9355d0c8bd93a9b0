using FluentValidation;
using MetaCompute.Api.Data;

namespace MetaCompute.Api.Reservations;

public sealed record PlacementWish(bool? SingleFabricIsland = null);

/// <summary>
/// Wait in the pool's queue instead of a 409 when no capacity is free (like GCP flex-start), for up to
/// <c>maxWaitMinutes</c> (omitted: a week, the longest wait, as GKE's queued provisioning waits by default).
/// </summary>
public sealed record WaitForCapacity(int? MaxWaitMinutes = null);

/// <summary>Book by <c>offeringId</c>, or by spec: pool, GPU count, start (omitted: now), duration or end, tier, placement.</summary>
public sealed record CreateReservationRequest(
    string? OfferingId = null,
    string? PoolId = null,
    int? GpuCount = null,
    DateTimeOffset? StartAt = null,
    int? DurationHours = null,
    DateTimeOffset? EndAt = null,
    ReservationTier? Tier = null,
    PlacementWish? Placement = null,
    WaitForCapacity? WaitForCapacity = null);

public sealed record ExtendReservationRequest(int AdditionalHours);

public sealed record ListReservationsQuery(string? Status, string? PoolId, int? Limit, string? PageToken);

public sealed record PriceResponse(decimal PricePerGpuHour, decimal Total, string Currency);

public sealed record LeaseNodeResponse(string NodeId, string Hostname, string FabricIsland, string Rack, IReadOnlyList<int> GpuIndices);

public sealed record LeaseResponse(string Id, DateTimeOffset StartAt, DateTimeOffset EndAt, IReadOnlyList<LeaseNodeResponse> Nodes);

public sealed record ReservationResponse(
    string Id,
    ReservationStatus Status,
    string PoolId,
    ReservationTier Tier,
    int GpuCount,
    DateTimeOffset StartAt,
    DateTimeOffset EndAt,
    PriceResponse Price,
    LeaseResponse? Lease,
    bool SingleFabricIsland,
    DateTimeOffset CreatedAt,
    DateTimeOffset? CancelledAt,
    DateTimeOffset? WaitUntil,
    DateTimeOffset? RecallAt);

public sealed class CreateReservationRequestValidator : AbstractValidator<CreateReservationRequest>
{
    /// <summary>A week, as GCP's flex-start allows.</summary>
    public const int MaxWaitMinutes = 7 * 24 * 60;

    /// <summary>
    /// The longest block anyone can ask for (five years); a pool's own rules sell less. Bounded here so that the window's
    /// arithmetic never leaves the calendar before those rules are checked.
    /// </summary>
    public const int MaxDurationHours = 5 * 366 * 24;

    public CreateReservationRequestValidator()
    {
        When(r => r.OfferingId is not null, () =>
        {
            RuleFor(r => r.OfferingId).NotEmpty();
            RuleFor(r => r).Must(r => r.PoolId is null && r.GpuCount is null && r.StartAt is null && r.DurationHours is null && r.EndAt is null)
                .OverridePropertyName("offeringId")
                .WithMessage("Send either an offeringId or a spec (poolId, gpuCount, …), not both.");
            RuleFor(r => r.Tier).Must(t => t is null or ReservationTier.Reserved).WithMessage("An offering is booked as a reserved block.");
            RuleFor(r => r.WaitForCapacity).Null().WithMessage("An offering is capacity held for you; there is nothing to wait for.");
        }).Otherwise(() =>
        {
            RuleFor(r => r.PoolId).NotEmpty();
            RuleFor(r => r.GpuCount).NotNull().GreaterThan(0);
            RuleFor(r => r.DurationHours).NotNull().When(r => r.EndAt is null).WithMessage("Give durationHours or endAt.");
            RuleFor(r => r.DurationHours).Null().When(r => r.EndAt is not null).WithMessage("Give durationHours or endAt, not both.");
            RuleFor(r => r.DurationHours).InclusiveBetween(1, MaxDurationHours);
            RuleFor(r => r.EndAt).GreaterThan(r => r.StartAt!.Value).When(r => r.StartAt is not null && r.EndAt is not null)
                .WithMessage("endAt must be after startAt.");
            RuleFor(r => r.Tier).IsInEnum();
            RuleFor(r => r.WaitForCapacity!.MaxWaitMinutes).InclusiveBetween(1, MaxWaitMinutes)
                .OverridePropertyName("waitForCapacity.maxWaitMinutes").WithName("waitForCapacity.maxWaitMinutes")
                .When(r => r.WaitForCapacity is not null);
        });
    }
}

public sealed class ExtendReservationRequestValidator : AbstractValidator<ExtendReservationRequest>
{
    public ExtendReservationRequestValidator() => RuleFor(r => r.AdditionalHours).InclusiveBetween(1, 24 * 366);
}

public sealed class ListReservationsQueryValidator : AbstractValidator<ListReservationsQuery>
{
    public ListReservationsQueryValidator()
    {
        RuleFor(q => q.Limit).InclusiveBetween(1, Infrastructure.Paging.MaxLimit);
        RuleFor(q => q.Status).Must(s => s is null || Infrastructure.WireEnum.TryParse<ReservationStatus>(s, out _))
            .WithMessage($"Use one of: {Infrastructure.WireEnum.Allowed<ReservationStatus>()}.");
        RuleFor(q => q.PageToken).Must(t => Infrastructure.Paging.TryDecode(t, out var key) && (key is null || Guid.TryParse(key, out _)))
            .WithMessage("The page token is not one this API issued.");
    }
}
