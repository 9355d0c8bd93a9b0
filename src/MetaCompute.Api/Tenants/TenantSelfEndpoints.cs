using System.Security.Claims;
using MetaCompute.Api.Admin;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Tenants;

/// <summary>A tenant's view of itself. Every query is filtered by the caller's tenant, so another tenant's id is 404.</summary>
public static class TenantSelfEndpoints
{
    public static RouteGroupBuilder MapTenantSelfEndpoints(this RouteGroupBuilder tenant)
    {
        tenant.MapGet("/tenant", GetCurrentTenant).WithTags("Tenant").WithName("getCurrentTenant").WithSummary("Get the calling tenant");
        tenant.MapGet("/api-keys", ListOwnApiKeys).WithTags("Tenant").WithName("listOwnApiKeys").WithSummary("List the calling tenant's API keys");
        tenant.MapGet("/api-keys/{keyId}", GetOwnApiKey).WithTags("Tenant").WithName("getOwnApiKey")
            .WithSummary("Get one of the calling tenant's API keys").ProducesProblem(StatusCodes.Status404NotFound);
        return tenant;
    }

    public static async Task<Ok<TenantResponse>> GetCurrentTenant(ClaimsPrincipal user, MetaComputeDbContext db, CancellationToken ct)
    {
        var tenantId = user.TenantIdOf();
        var tenant = await db.Tenants.AsNoTracking().SingleAsync(t => t.Id == tenantId, ct);
        return TypedResults.Ok(tenant.ToResponse());
    }

    public static async Task<Ok<Page<ApiKeyResponse>>> ListOwnApiKeys(ClaimsPrincipal user, MetaComputeDbContext db, CancellationToken ct)
    {
        var tenantId = user.TenantIdOf();
        var keys = await db.ApiKeys.AsNoTracking().Where(k => k.TenantId == tenantId).OrderBy(k => k.Id).ToListAsync(ct);
        return TypedResults.Ok(new Page<ApiKeyResponse>(keys.Select(k => k.ToResponse()).ToList(), null));
    }

    public static async Task<Results<Ok<ApiKeyResponse>, ProblemHttpResult>> GetOwnApiKey(Guid keyId, ClaimsPrincipal user, MetaComputeDbContext db,
        CancellationToken ct)
    {
        var tenantId = user.TenantIdOf();
        var key = await db.ApiKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Id == keyId && k.TenantId == tenantId, ct);
        return key is null ? Problems.NotFound($"API key '{keyId}'") : TypedResults.Ok(key.ToResponse());
    }
}
