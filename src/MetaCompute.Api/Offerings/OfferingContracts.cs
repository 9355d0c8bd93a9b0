using FluentValidation;
using MetaCompute.Api.Data;

namespace MetaCompute.Api.Offerings;

public sealed record OfferingsQuery(
    string? PoolId,
    string? Region,
    string? GpuModel,
    int? GpuCount,
    int? DurationHours,
    DateTimeOffset? EarliestStart,
    DateTimeOffset? LatestStart,
    bool? SingleFabricIsland,
    int? Limit);

public sealed record OfferingResponse(
    string OfferingId,
    string PoolId,
    ReservationTier Tier,
    DateTimeOffset StartAt,
    DateTimeOffset EndAt,
    int GpuCount,
    IReadOnlyList<string> FabricIslands,
    decimal PricePerGpuHour,
    decimal TotalPrice,
    string Currency,
    DateTimeOffset ExpiresAt);

public sealed class OfferingsQueryValidator : AbstractValidator<OfferingsQuery>
{
    public OfferingsQueryValidator()
    {
        RuleFor(q => q.PoolId).NotEmpty().When(q => q.Region is null && q.GpuModel is null).WithMessage("Give poolId, or region and gpuModel.");
        RuleFor(q => q.Region).NotEmpty().When(q => q.PoolId is null && q.GpuModel is not null);
        RuleFor(q => q.GpuModel).NotEmpty().When(q => q.PoolId is null && q.Region is not null);
        RuleFor(q => q.GpuCount).NotNull().GreaterThan(0);
        RuleFor(q => q.DurationHours).NotNull().InclusiveBetween(1, Reservations.CreateReservationRequestValidator.MaxDurationHours);
        RuleFor(q => q.LatestStart).GreaterThanOrEqualTo(q => q.EarliestStart!.Value)
            .When(q => q.EarliestStart is not null && q.LatestStart is not null);
        RuleFor(q => q.Limit).InclusiveBetween(1, 50);
    }
}
