using System.Security.Claims;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Billing;
using MetaCompute.Api.Catalog;
using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using MetaCompute.Api.Idempotency;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Offerings;
using MetaCompute.Api.Scheduling;
using MetaCompute.Scheduling;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace MetaCompute.Api.Reservations;

/// <summary>
/// A tenant's reservations. Every mutation runs under an Idempotency-Key in one transaction that also takes the pool's
/// lock, so the capacity check, the quota check and the allocation rows are one atomic step.
/// </summary>
public static class ReservationEndpoints
{
    public const string InsufficientCapacityType = Problems.BaseUri + "insufficient-capacity";
    public const string InvalidStateType = Problems.BaseUri + "invalid-reservation-state";
    public const string ExtensionNotPossibleType = Problems.BaseUri + "extension-not-possible";
    public const string OfferingExpiredType = Problems.BaseUri + "offering-expired";

    /// <summary>How many alternatives a 409 for capacity suggests, and how far ahead it looks for them.</summary>
    public const int AlternativeCount = 3;

    public static RouteGroupBuilder MapReservationEndpoints(this RouteGroupBuilder tenant)
    {
        var reservations = tenant.MapGroup("/reservations").WithTags("Reservations");
        reservations.MapPost("", CreateReservation).WithName("createReservation")
            .WithSummary("Reserve GPUs, by offering id or by spec; requires an Idempotency-Key")
            .WithMetadata(IdempotentRequest.OpenApiMetadata(StatusCodes.Status201Created, StatusCodes.Status202Accepted))
            .WithMetadata(new AnswersHeader(StatusCodes.Status202Accepted, "Location", "Where to follow the queued reservation."))
            .Produces<ReservationResponse>(StatusCodes.Status201Created)
            .Produces<ReservationResponse>(StatusCodes.Status202Accepted)
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        reservations.MapGet("", ListReservations).WithName("listReservations").WithSummary("List the calling tenant's reservations")
            .ProducesValidationProblem();
        reservations.MapGet("/{reservationId}", GetReservation).WithName("getReservation")
            .WithSummary("Get a reservation and its lease").ProducesProblem(StatusCodes.Status404NotFound);
        reservations.MapPost("/{reservationId}/cancel", CancelReservation).WithName("cancelReservation")
            .WithSummary("Cancel: before the start everything is released; after it, the GPUs are freed from now")
            .WithMetadata(IdempotentRequest.OpenApiMetadata(StatusCodes.Status200OK))
            .Produces<ReservationResponse>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        reservations.MapPost("/{reservationId}/extend", ExtendReservation).WithName("extendReservation")
            .WithSummary("Extend on the same GPUs, or 409 saying the longest extension possible")
            .WithMetadata(IdempotentRequest.OpenApiMetadata(StatusCodes.Status200OK))
            .Produces<ReservationResponse>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        return tenant;
    }

    public static async Task<IResult> CreateReservation(CreateReservationRequest request, HttpContext http, ClaimsPrincipal user,
        MetaComputeDbContext db, IdempotentRequest idempotent, OfferingTokens tokens, NodeDirectory nodes, PoolCache pools,
        ReservationPools owners, IOptions<QuotaOptions> quotas, TimeProvider time)
    {
        var ct = http.RequestAborted;
        var tenantId = user.TenantIdOf();
        var tenantKind = user.TenantKindOf();
        var now = time.GetUtcNow();

        BookingSpec spec;
        if (request.OfferingId is not null)
        {
            var terms = await tokens.ReadAsync(request.OfferingId, ct);
            if (terms is null)
            {
                return Problems.Invalid("offeringId", "This is not an offering id this API issued.");
            }

            if (terms.ExpiresAt < now)
            {
                return TypedResults.Problem(title: "Offering expired", statusCode: StatusCodes.Status409Conflict, type: OfferingExpiredType,
                    detail: $"The offering expired at {terms.ExpiresAt:O}; ask for offerings again.");
            }

            var offeredPool = await pools.GetAsync(db, terms.PoolId, ct)
                              ?? throw new InvalidOperationException($"Pool {terms.PoolId} of an issued offering is gone.");
            var tier = tenantKind == TenantKind.Internal ? ReservationTier.Internal : ReservationTier.Reserved;
            spec = new BookingSpec(offeredPool, tier, terms.GpuCount, terms.StartAt, terms.EndAt, terms.SingleFabricIsland);
        }
        else
        {
            var pool = await pools.GetAsync(db, request.PoolId!, ct);
            if (pool is null)
            {
                return Problems.NotFound($"Pool '{request.PoolId}'");
            }

            var (resolved, errors) = BookingRules.Resolve(request, pool, tenantKind, now);
            if (resolved is null)
            {
                return TypedResults.ValidationProblem(errors, title: "The request is not valid.", type: Problems.ValidationFailedType);
            }

            spec = resolved;
        }

        TimeSpan? maxWait = request.WaitForCapacity is { } wait
            ? TimeSpan.FromMinutes(wait.MaxWaitMinutes ?? CreateReservationRequestValidator.MaxWaitMinutes)
            : null;
        return await idempotent.RunAsync(http, tenantId, request, spec.Pool.Id,
            (batchDb, index, batchNow, batchCt) => BookAsync(batchDb, index, tokens, nodes, owners, quotas.Value, tenantId, spec, maxWait, batchNow, batchCt));
    }

    private static async Task<Outcome> BookAsync(MetaComputeDbContext db, PoolOccupancy index, OfferingTokens tokens, NodeDirectory nodes,
        ReservationPools owners, QuotaOptions quotas, Guid tenantId, BookingSpec spec, TimeSpan? maxWait, DateTimeOffset now, CancellationToken ct)
    {
        var (start, end) = spec.WindowAt(now);
        var (limit, peak) = Quotas.Check(db, quotas, tenantId, spec.Pool.Id, start, end, spec.GpuCount);
        if (peak > limit)
        {
            return Outcome.Problem(StatusCodes.Status409Conflict, Quotas.ExceededType, "Quota exceeded",
                $"This reservation would bring your concurrent GPUs in {spec.Pool.Id} to {peak}; your quota is {limit}.",
                new Dictionary<string, object?> { ["quota"] = limit, ["requestedPeak"] = peak });
        }

        var holdback = BookingRules.HoldbackFor(spec.Pool, spec.Tier);
        // A request willing to wait joins the queue behind those already waiting rather than jumping it.
        if (maxWait is { } wait && await RequestQueue.AnyWaitingAsync(db, spec.Pool.Id, ct))
        {
            return await RequestQueue.EnqueueAsync(db, index, tenantId, spec, now + wait, now, ct);
        }

        var decision = Allocator.Decide(index, new PlacementRequest(spec.GpuCount, start, end, spec.SingleFabricIsland, holdback));
        var placement = decision.Placement;
        IReadOnlyList<AllocationWrite> recallWrites = [];
        if (placement is null && spec.Tier == ReservationTier.Internal
            && await SpotRecalls.TryAsync(db, index, spec, now, ct) is { } recall)
        {
            (start, end, placement, recallWrites) = (recall.Start, recall.End, recall.Placement, recall.Writes);
        }

        if (placement is null && maxWait is { } patience)
        {
            return await RequestQueue.EnqueueAsync(db, index, tenantId, spec, now + patience, now, ct);
        }

        if (placement is null)
        {
            return await InsufficientCapacityAsync(db, index, tokens, spec, decision.Failure, holdback, now, ct);
        }

        var reservation = NewReservation(tenantId, spec, ReservationStatus.Scheduled, start, end, index, now);
        db.Reservations.Add(reservation);
        // Its id reaches the tenant only in the answer, which is sent after the commit: remembering it now is safe.
        owners.Remember(reservation.Id, tenantId, spec.Pool.Id);
        var (hold, write) = LeaseGrants.Grant(db, index, reservation, placement, now, queuedSince: null);
        var response = await ReservationViews.FromHoldAsync(db, nodes, reservation, hold, ct);
        return new Outcome(StatusCodes.Status201Created, response, $"/v1/reservations/{reservation.Id}", [.. recallWrites, write]);
    }

    /// <summary>The share of the pool's open GPUs busy at <paramref name="at"/>.</summary>
    public static double Utilisation(PoolOccupancy index, DateTimeOffset at)
    {
        var (busy, free, _) = Allocator.Usage(index, at, at.AddSeconds(1));
        return busy + free == 0 ? 1 : (double)busy / (busy + free);
    }

    /// <summary>A reservation as asked, at the price of the moment: later list-price changes never touch it.</summary>
    public static Reservation NewReservation(Guid tenantId, BookingSpec spec, ReservationStatus status, DateTimeOffset start, DateTimeOffset end,
        PoolOccupancy index, DateTimeOffset now)
    {
        // Spot follows the pool's utilisation at the moment of sale; the other tiers do not need it.
        var utilisation = spec.Tier == ReservationTier.Spot ? Utilisation(index, now) : 0;
        var price = Pricing.PricePerGpuHour(spec.Pool.Prices, spec.Tier, end - start, utilisation);
        return new Reservation
        {
            Id = Guid.CreateVersion7(now),
            TenantId = tenantId,
            PoolId = spec.Pool.Id,
            Tier = spec.Tier,
            Status = status,
            GpuCount = spec.GpuCount,
            StartAt = start,
            EndAt = end,
            SingleFabricIsland = spec.SingleFabricIsland,
            PricePerGpuHour = price,
            TotalPrice = Pricing.Total(price, spec.GpuCount, start, end),
            Currency = Pricing.Currency,
            CreatedAt = now,
            UpdatedAt = now,
        };
    }

    private static async Task<Outcome> InsufficientCapacityAsync(MetaComputeDbContext db, PoolOccupancy index, OfferingTokens tokens, BookingSpec spec,
        PlacementFailure? failure, int holdback, DateTimeOffset now, CancellationToken ct)
    {
        var duration = spec.EndAt - spec.StartAt;
        var horizon = now.AddDays(spec.Pool.Rules.MaxStartAheadDays);
        var latest = spec.StartAt + OfferingEndpoints.DefaultSearchSpan;
        var windows = BookableWindows.Find(index, new WindowSearch(spec.GpuCount, duration, spec.StartAt.AddMinutes(1),
            latest < horizon ? latest : horizon, spec.SingleFabricIsland, holdback, AlternativeCount));
        var alternatives = await OfferingEndpoints.ToOfferingsAsync(db, tokens, spec.Pool,
            spec.Tier == ReservationTier.Internal ? ReservationTier.Internal : ReservationTier.Reserved, windows, spec.SingleFabricIsland, now, ct);
        return Outcome.Problem(StatusCodes.Status409Conflict, InsufficientCapacityType, "Insufficient capacity",
            $"{spec.Pool.Id} cannot place {spec.GpuCount} GPUs from {spec.StartAt:O} to {spec.EndAt:O}: {failure}.",
            new Dictionary<string, object?> { ["reason"] = failure.ToString(), ["alternatives"] = alternatives });
    }

    public static async Task<Results<Ok<Page<ReservationResponse>>, ValidationProblem>> ListReservations([AsParameters] ListReservationsQuery query,
        ClaimsPrincipal user, MetaComputeDbContext db, CancellationToken ct)
    {
        var tenantId = user.TenantIdOf();
        Paging.TryDecode(query.PageToken, out var after);
        var limit = Paging.Limit(query.Limit);
        var reservations = db.Reservations.AsNoTracking().Include(r => r.Lease).Where(r => r.TenantId == tenantId);
        if (WireEnum.TryParse<ReservationStatus>(query.Status, out var status))
        {
            reservations = reservations.Where(r => r.Status == status);
        }

        if (query.PoolId is not null)
        {
            reservations = reservations.Where(r => r.PoolId == query.PoolId);
        }

        if (after is not null)
        {
            var afterId = Guid.Parse(after);
            reservations = reservations.Where(r => r.Id.CompareTo(afterId) > 0);
        }

        var rows = await reservations.OrderBy(r => r.Id).Take(limit + 1).ToListAsync(ct);
        var responses = await ReservationViews.ToResponsesAsync(db, rows.Take(limit).ToList(), ct);
        var next = rows.Count > limit ? Paging.Encode(rows[limit - 1].Id.ToString()) : null;
        return TypedResults.Ok(new Page<ReservationResponse>(responses, next));
    }

    public static async Task<Results<Ok<ReservationResponse>, ProblemHttpResult>> GetReservation(Guid reservationId, ClaimsPrincipal user,
        MetaComputeDbContext db, HttpContext http, CancellationToken ct)
    {
        var tenantId = user.TenantIdOf();
        var reservation = await db.Reservations.AsNoTracking().Include(r => r.Lease)
            .FirstOrDefaultAsync(r => r.Id == reservationId && r.TenantId == tenantId, ct);
        if (reservation is null)
        {
            return Problems.NotFound($"Reservation '{reservationId}'");
        }

        http.Response.Headers.ETag = ETags.Format(reservation.Version);
        return TypedResults.Ok(await ReservationViews.ToResponseAsync(db, reservation, ct));
    }

    public static async Task<IResult> CancelReservation(Guid reservationId, HttpContext http, ClaimsPrincipal user, MetaComputeDbContext db,
        IdempotentRequest idempotent, NodeDirectory nodes, ReservationPools owners)
    {
        var tenantId = user.TenantIdOf();
        var poolId = await PoolOfAsync(db, owners, tenantId, reservationId, http.RequestAborted);
        if (poolId is null)
        {
            return Problems.NotFound($"Reservation '{reservationId}'");
        }

        return await idempotent.RunAsync(http, tenantId, null, poolId, async (db, index, now, ct) =>
        {
            var reservation = await FindAsync(db, reservationId, ct);
            if (reservation.Status == ReservationStatus.Pending)
            {
                // A queued request holds nothing: it just leaves the queue.
                reservation.Status = ReservationStatus.Cancelled;
                reservation.CancelledAt = now;
                reservation.UpdatedAt = now;
                db.Append(EventTypes.ReservationCancelled, tenantId, reservation.Id, now, new { released = "queued", releasedAt = now });
                return new Outcome(StatusCodes.Status200OK, await ReservationViews.FromHoldAsync(db, nodes, reservation, null, ct));
            }

            if (reservation.Status is not (ReservationStatus.Scheduled or ReservationStatus.Active) || reservation.EndAt <= now || reservation.Lease is null)
            {
                return InvalidState(reservation, now, "cancelled");
            }

            var lease = reservation.Lease;
            var hold = index.Lease(lease.Id) ?? throw new InvalidOperationException($"Lease {lease.Id} is missing from its pool's index.");
            var beforeStart = now < reservation.StartAt;
            AllocationWrite write;
            if (beforeStart)
            {
                index.RemoveLease(lease.Id);
                write = AllocationWriter.Delete(lease.Id, now);
            }
            else
            {
                index.SetLease(hold with { End = now });
                write = AllocationWriter.SetEnd(hold, now, now);
                lease.EndAt = now;
            }

            reservation.Status = ReservationStatus.Cancelled;
            reservation.CancelledAt = now;
            reservation.UpdatedAt = now;
            // A reserved block was paid in advance: the published rule says what comes back. The other tiers pay only
            // for what they held, which metering counts; their total now says so.
            var refund = 0m;
            if (reservation.Tier == ReservationTier.Reserved)
            {
                refund = Pricing.ReservedRefund(reservation.TotalPrice, reservation.StartAt, now);
                Ledger.Charge(db, reservation, ChargeKind.Refund, -refund, now);
            }
            else
            {
                reservation.TotalPrice = beforeStart ? 0 : Pricing.Total(reservation.PricePerGpuHour, reservation.GpuCount, reservation.StartAt, now);
            }

            db.Append(EventTypes.ReservationCancelled, tenantId, reservation.Id, now, new
            {
                leaseId = lease.Id,
                released = beforeStart ? "all" : "from_now",
                releasedAt = now,
                refund,
            });
            return new Outcome(StatusCodes.Status200OK,
                await ReservationViews.FromHoldAsync(db, nodes, reservation, beforeStart ? null : hold with { End = now }, ct), Writes: [write]);
        }, reservationId);
    }

    public static async Task<IResult> ExtendReservation(Guid reservationId, ExtendReservationRequest request, HttpContext http, ClaimsPrincipal user,
        MetaComputeDbContext db, IdempotentRequest idempotent, NodeDirectory nodes, PoolCache pools, ReservationPools owners,
        IOptions<QuotaOptions> quotas)
    {
        var tenantId = user.TenantIdOf();
        var poolId = await PoolOfAsync(db, owners, tenantId, reservationId, http.RequestAborted);
        if (poolId is null)
        {
            return Problems.NotFound($"Reservation '{reservationId}'");
        }

        return await idempotent.RunAsync(http, tenantId, request, poolId, async (db, index, now, ct) =>
        {
            var reservation = await FindAsync(db, reservationId, ct);

            if (reservation.Status is not (ReservationStatus.Scheduled or ReservationStatus.Active) || reservation.EndAt <= now || reservation.Lease is null)
            {
                return InvalidState(reservation, now, "extended");
            }

            if (reservation.RecallAt is not null)
            {
                return Outcome.Problem(StatusCodes.Status409Conflict, InvalidStateType, "Invalid reservation state",
                    $"The spot lease is being recalled at {reservation.RecallAt:O} and cannot be extended.");
            }

            var pool = await pools.GetAsync(db, reservation.PoolId, ct)
                       ?? throw new InvalidOperationException($"Pool {reservation.PoolId} of reservation {reservation.Id} is gone.");
            var lease = reservation.Lease;
            var oldEnd = reservation.EndAt;
            var newEnd = oldEnd.AddHours(request.AdditionalHours);
            {
                var holdback = BookingRules.HoldbackFor(pool, reservation.Tier);
                var limit = reservation.StartAt.AddHours(pool.Rules.MaxDurationHours);
                var latest = BookableWindows.LatestExtension(index, lease.Id, limit);
                bool Sellable(DateTimeOffset end) => Allocator.FreeGpus(index, oldEnd, end, lease.Id) - holdback >= reservation.GpuCount;
                if (newEnd > latest || !Sellable(newEnd))
                {
                    // The longest whole-hour extension that keeps both the same GPUs and the pool's holdback.
                    var maxHours = (int)Math.Floor((latest - oldEnd).TotalHours);
                    while (maxHours > 0 && !Sellable(oldEnd.AddHours(maxHours)))
                    {
                        maxHours--;
                    }

                    return Outcome.Problem(StatusCodes.Status409Conflict, ExtensionNotPossibleType, "Extension not possible",
                        $"The same GPUs are free for at most {maxHours} more hours (the pool's maximum duration included).",
                        new Dictionary<string, object?> { ["maxAdditionalHours"] = maxHours });
                }

                var (quota, peak) = Quotas.Check(db, quotas.Value, tenantId, pool.Id, oldEnd, newEnd, reservation.GpuCount);
                if (peak > quota)
                {
                    return Outcome.Problem(StatusCodes.Status409Conflict, Quotas.ExceededType, "Quota exceeded",
                        $"The extension would bring your concurrent GPUs in {pool.Id} to {peak}; your quota is {quota}.",
                        new Dictionary<string, object?> { ["quota"] = quota, ["requestedPeak"] = peak });
                }

                var hold = index.Lease(lease.Id) ?? throw new InvalidOperationException($"Lease {lease.Id} is missing from its pool's index.");
                index.SetLease(hold with { End = newEnd });
                lease.EndAt = newEnd;
                reservation.EndAt = newEnd;
                // The warning was about the old end; the scheduler warns again before the new one.
                reservation.EndingSoonNotifiedAt = null;
                var added = Pricing.Total(reservation.PricePerGpuHour, reservation.GpuCount, oldEnd, newEnd);
                reservation.TotalPrice += added;
                if (reservation.Tier == ReservationTier.Reserved)
                {
                    Ledger.Charge(db, reservation, ChargeKind.Extension, added, now);
                }

                reservation.UpdatedAt = now;
                db.Append(EventTypes.ReservationExtended, tenantId, reservation.Id, now, new
                {
                    leaseId = lease.Id,
                    previousEndAt = oldEnd,
                    endAt = newEnd,
                    additionalHours = request.AdditionalHours,
                });
                return new Outcome(StatusCodes.Status200OK, await ReservationViews.FromHoldAsync(db, nodes, reservation, hold with { End = newEnd }, ct),
                    Writes: [AllocationWriter.SetEnd(hold, newEnd, now)]);
            }
        }, reservationId);
    }

    /// <summary>The reservation with its lease; the decider has loaded it for the batch, so this asks the database only as a fallback.</summary>
    private static async Task<Reservation> FindAsync(MetaComputeDbContext db, Guid reservationId, CancellationToken ct)
    {
        var reservation = await db.Reservations.FindAsync([reservationId], ct)
                          ?? throw new InvalidOperationException($"Reservation {reservationId} vanished.");
        var lease = db.Entry(reservation).Reference(r => r.Lease);
        if (!lease.IsLoaded)
        {
            await lease.LoadAsync(ct);
        }

        return reservation;
    }

    /// <summary>The pool of the caller's own reservation, or null: another tenant's reservation is not found.</summary>
    private static async Task<string?> PoolOfAsync(MetaComputeDbContext db, ReservationPools owners, Guid tenantId, Guid reservationId,
        CancellationToken ct)
    {
        if (owners.TryGetPool(tenantId, reservationId, out var remembered))
        {
            return remembered;
        }

        return await db.Reservations.Where(r => r.Id == reservationId && r.TenantId == tenantId).Select(r => r.PoolId).FirstOrDefaultAsync(ct);
    }

    private static Outcome InvalidState(Reservation reservation, DateTimeOffset now, string verb) =>
        Outcome.Problem(StatusCodes.Status409Conflict, InvalidStateType, "Invalid reservation state",
            reservation.EndAt <= now && reservation.Status is ReservationStatus.Scheduled or ReservationStatus.Active
                ? $"The reservation ended at {reservation.EndAt:O} and cannot be {verb}."
                : $"The reservation is {WireEnum.Name(reservation.Status)} and cannot be {verb}.");
}
