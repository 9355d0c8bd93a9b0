using System.Security.Claims;
using FluentValidation;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Catalog;
using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using MetaCompute.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Admin;

public sealed record UpdatePoolRequest(PoolRulesResponse Rules, PoolPricesUpdate Prices);

public sealed record PoolPricesUpdate(decimal OnDemand, decimal Reserved, decimal Spot, decimal Internal);

public sealed class UpdatePoolRequestValidator : AbstractValidator<UpdatePoolRequest>
{
    public UpdatePoolRequestValidator()
    {
        RuleFor(r => r.Rules).NotNull();
        RuleFor(r => r.Prices).NotNull();
        When(r => r.Rules is not null, () =>
        {
            RuleFor(r => r.Rules.MinGpus).GreaterThanOrEqualTo(1);
            RuleFor(r => r.Rules.MaxGpus).GreaterThanOrEqualTo(r => r.Rules.MinGpus);
            RuleFor(r => r.Rules.MinDurationHours).GreaterThanOrEqualTo(1);
            RuleFor(r => r.Rules.MaxDurationHours).GreaterThanOrEqualTo(r => r.Rules.MinDurationHours)
                .LessThanOrEqualTo(Reservations.CreateReservationRequestValidator.MaxDurationHours);
            RuleFor(r => r.Rules.MaxStartAheadDays).InclusiveBetween(0, 366);
            RuleFor(r => r.Rules.HoldbackGpus).GreaterThanOrEqualTo(0);
            RuleFor(r => r.Rules.RecallNoticeSeconds).GreaterThanOrEqualTo(0);
        });
        When(r => r.Prices is not null, () =>
        {
            RuleFor(r => r.Prices.OnDemand).GreaterThanOrEqualTo(0).PrecisionScale(12, 6, true);
            RuleFor(r => r.Prices.Reserved).GreaterThanOrEqualTo(0).PrecisionScale(12, 6, true);
            RuleFor(r => r.Prices.Spot).GreaterThanOrEqualTo(0).PrecisionScale(12, 6, true);
            RuleFor(r => r.Prices.Internal).GreaterThanOrEqualTo(0).PrecisionScale(12, 6, true);
        });
    }
}

public static class PoolAdminEndpoints
{
    public const string PreconditionRequiredType = Problems.BaseUri + "precondition-required";

    public static RouteGroupBuilder MapPoolAdminEndpoints(this RouteGroupBuilder admin)
    {
        admin.MapPut("/pools/{poolId}", UpdatePool).WithTags("Admin: fleet").WithName("updatePool")
            .WithSummary("Replace a pool's rules, holdback and prices; requires If-Match with the pool's ETag")
            .WithMetadata(new TakesHeader("If-Match", Required: true, MaxLength: 20, "The pool's ETag from GET /v1/pools/{poolId}; 412 when the pool changed since."),
                new AnswersHeader(StatusCodes.Status200OK, "ETag", "The pool's version after the edit, for the next If-Match."))
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed).ProducesProblem(StatusCodes.Status428PreconditionRequired);
        return admin;
    }

    /// <summary>
    /// Optimistic concurrency on the row version: the client's If-Match becomes the version's original value, so
    /// the update only applies to the row the client read; otherwise the exception handler answers 412. Reservations
    /// keep the price they were sold at; new rules apply to the next request.
    /// </summary>
    public static async Task<Results<Ok<PoolResponse>, ProblemHttpResult>> UpdatePool(string poolId, UpdatePoolRequest request, HttpContext http,
        ClaimsPrincipal user, MetaComputeDbContext db, Catalog.PoolCache pools, TimeProvider time, CancellationToken ct)
    {
        var pool = await db.Pools.FirstOrDefaultAsync(p => p.Id == poolId, ct);
        if (pool is null)
        {
            return Problems.NotFound($"Pool '{poolId}'");
        }

        string? ifMatch = http.Request.Headers.IfMatch;
        if (string.IsNullOrWhiteSpace(ifMatch) || ifMatch.Trim() == "*")
        {
            return TypedResults.Problem(title: "If-Match required", statusCode: StatusCodes.Status428PreconditionRequired, type: PreconditionRequiredType,
                detail: "Send the pool's ETag (from GET /v1/pools/{id}) in If-Match, so an edit never overwrites one you have not seen.");
        }

        // Checked here as well as by the row version on save: an edit that changes nothing saves no row, and an ETag that
        // is not the pool's current one (stale, weak, made up) must still be refused.
        if (!ETags.TryParse(ifMatch, out var version) || pool.Version != version)
        {
            return TypedResults.Problem(title: "The resource has changed", statusCode: StatusCodes.Status412PreconditionFailed,
                type: Problems.PreconditionFailedType, detail: "The If-Match ETag does not match the pool's current one; read the pool again and retry.");
        }

        var before = new { rules = pool.Rules with { }, prices = pool.Prices with { } };
        db.Entry(pool).Property(p => p.Version).OriginalValue = version;
        var r = request.Rules;
        pool.Rules.MinGpus = r.MinGpus;
        pool.Rules.MaxGpus = r.MaxGpus;
        pool.Rules.MinDurationHours = r.MinDurationHours;
        pool.Rules.MaxDurationHours = r.MaxDurationHours;
        pool.Rules.MaxStartAheadDays = r.MaxStartAheadDays;
        pool.Rules.HoldbackGpus = r.HoldbackGpus;
        pool.Rules.RecallNoticeSeconds = r.RecallNoticeSeconds;
        pool.Prices.OnDemand = request.Prices.OnDemand;
        pool.Prices.Reserved = request.Prices.Reserved;
        pool.Prices.Spot = request.Prices.Spot;
        pool.Prices.Internal = request.Prices.Internal;
        // An edit that changes nothing is answered like any other but leaves no row and no audit event.
        if (before.rules != pool.Rules || before.prices != pool.Prices)
        {
            db.Append(EventTypes.PoolUpdated, null, null, time.GetUtcNow(), new { poolId, by = user.KeyIdOf(), before, after = new { rules = pool.Rules, prices = pool.Prices } });
            await db.SaveChangesAsync(ct);
            pools.Forget(poolId);
        }

        var capacity = await PoolCapacity.ForPoolsAsync(db, [poolId], ct);
        var saved = await db.Pools.AsNoTracking().SingleAsync(p => p.Id == poolId, ct);
        http.Response.Headers.ETag = ETags.Format(saved.Version);
        return TypedResults.Ok(saved.ToResponse(capacity.GetValueOrDefault(poolId, PoolCapacity.Empty)));
    }
}
