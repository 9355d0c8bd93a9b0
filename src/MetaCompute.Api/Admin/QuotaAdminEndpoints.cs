using FluentValidation;
using System.Security.Claims;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace MetaCompute.Api.Admin;

public sealed record SetQuotaRequest(int MaxConcurrentGpus);

public sealed record QuotaResponse(string TenantId, string PoolId, int MaxConcurrentGpus);

public sealed class SetQuotaRequestValidator : AbstractValidator<SetQuotaRequest>
{
    public SetQuotaRequestValidator() => RuleFor(r => r.MaxConcurrentGpus).InclusiveBetween(0, 1_000_000);
}

public static class QuotaAdminEndpoints
{
    public static RouteGroupBuilder MapQuotaAdminEndpoints(this RouteGroupBuilder admin)
    {
        var quotas = admin.MapGroup("/tenants/{tenantId}/quotas").WithTags("Admin: tenants");
        quotas.MapGet("", ListQuotas).WithName("listTenantQuotas").WithSummary("List a tenant's quotas (pools without one use the default)")
            .ProducesProblem(StatusCodes.Status404NotFound);
        quotas.MapPut("/{poolId}", SetQuota).WithName("setTenantQuota").WithSummary("Set a tenant's max concurrent GPUs in a pool")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound);
        return admin;
    }

    public static async Task<Results<Ok<Page<QuotaResponse>>, ProblemHttpResult>> ListQuotas(Guid tenantId, MetaComputeDbContext db, CancellationToken ct)
    {
        if (!await db.Tenants.AnyAsync(t => t.Id == tenantId, ct))
        {
            return Problems.NotFound($"Tenant '{tenantId}'");
        }

        var quotas = await db.TenantQuotas.AsNoTracking().Where(q => q.TenantId == tenantId).OrderBy(q => q.PoolId).ToListAsync(ct);
        return TypedResults.Ok(new Page<QuotaResponse>(quotas.Select(q => new QuotaResponse(q.TenantId.ToString(), q.PoolId, q.MaxConcurrentGpus)).ToList(), null));
    }

    public static async Task<Results<Ok<QuotaResponse>, ProblemHttpResult>> SetQuota(Guid tenantId, string poolId, SetQuotaRequest request,
        ClaimsPrincipal user, MetaComputeDbContext db, IOptions<QuotaOptions> defaults, TimeProvider time, CancellationToken ct)
    {
        if (!await db.Tenants.AnyAsync(t => t.Id == tenantId, ct))
        {
            return Problems.NotFound($"Tenant '{tenantId}'");
        }

        if (!await db.Pools.AnyAsync(p => p.Id == poolId, ct))
        {
            return Problems.NotFound($"Pool '{poolId}'");
        }

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var before = await db.TenantQuotas.Where(q => q.TenantId == tenantId && q.PoolId == poolId).Select(q => (int?)q.MaxConcurrentGpus)
            .FirstOrDefaultAsync(ct) ?? defaults.Value.DefaultMaxConcurrentGpus;
        db.Append(EventTypes.TenantQuotaSet, null, null, time.GetUtcNow(), new
        {
            tenantId, poolId, by = user.KeyIdOf(), before, after = request.MaxConcurrentGpus,
        });
        await db.SaveChangesAsync(ct);
        // An upsert: setting a quota twice is the same as setting it once.
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO tenant_quotas (tenant_id, pool_id, max_concurrent_gpus) VALUES ({tenantId}, {poolId}, {request.MaxConcurrentGpus})
            ON CONFLICT (tenant_id, pool_id) DO UPDATE SET max_concurrent_gpus = excluded.max_concurrent_gpus
            """, ct);
        await tx.CommitAsync(ct);
        return TypedResults.Ok(new QuotaResponse(tenantId.ToString(), poolId, request.MaxConcurrentGpus));
    }
}
