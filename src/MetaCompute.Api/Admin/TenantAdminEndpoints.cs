using System.Security.Claims;
using FluentValidation;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Events;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Admin;

public sealed record CreateTenantRequest(string Name, TenantKind? Kind = null);

public sealed record TenantResponse(string Id, string Name, TenantKind Kind, int FairShareWeight, DateTimeOffset CreatedAt);

/// <summary>A tenant's weight in fair share between queued requests (1–1000; a tenant of weight 2 gets twice the share).</summary>
public sealed record SetFairShareRequest(int Weight);

public sealed record CreateApiKeyRequest(string? Name = null);

/// <summary>The one answer that carries the key itself; it is never shown again.</summary>
public sealed record NewApiKeyResponse(string Id, string Key, string Prefix, string Name, DateTimeOffset CreatedAt);

public sealed record ApiKeyResponse(string Id, string Prefix, string Name, string? TenantId, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

public sealed record ListQuery(int? Limit, string? PageToken);

public sealed class CreateTenantRequestValidator : AbstractValidator<CreateTenantRequest>
{
    public CreateTenantRequestValidator()
    {
        RuleFor(r => r.Name).NotEmpty().MaximumLength(100)
            .Matches("^[a-z0-9][a-z0-9-]*$").WithMessage("Use lowercase letters, digits and hyphens, starting with a letter or digit.");
        RuleFor(r => r.Kind).IsInEnum();
    }
}

public sealed class SetFairShareRequestValidator : AbstractValidator<SetFairShareRequest>
{
    public SetFairShareRequestValidator() => RuleFor(r => r.Weight).InclusiveBetween(1, 1000);
}

public sealed class CreateApiKeyRequestValidator : AbstractValidator<CreateApiKeyRequest>
{
    public CreateApiKeyRequestValidator() => RuleFor(r => r.Name).MaximumLength(100);
}

public sealed class ListQueryValidator : AbstractValidator<ListQuery>
{
    public ListQueryValidator()
    {
        RuleFor(q => q.Limit).InclusiveBetween(1, Paging.MaxLimit);
        RuleFor(q => q.PageToken).Must(t => Paging.TryDecode(t, out var key) && (key is null || Guid.TryParse(key, out _)))
            .WithMessage("The page token is not one this API issued.");
    }
}

public static class TenantAdminEndpoints
{
    public static RouteGroupBuilder MapTenantAdminEndpoints(this RouteGroupBuilder admin)
    {
        var tenants = admin.MapGroup("/tenants").WithTags("Admin: tenants");
        tenants.MapPost("", CreateTenant).WithName("createTenant").WithSummary("Create a tenant")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status409Conflict);
        tenants.MapGet("", ListTenants).WithName("listTenants").WithSummary("List tenants").ProducesValidationProblem();
        tenants.MapGet("/{tenantId}", GetTenant).WithName("getTenant").WithSummary("Get a tenant").ProducesProblem(StatusCodes.Status404NotFound);
        tenants.MapPut("/{tenantId}/fair-share", SetFairShare).WithName("setTenantFairShare")
            .WithSummary("Set a tenant's weight in fair share between queued requests")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound);
        tenants.MapPost("/{tenantId}/api-keys", CreateApiKey).WithName("createTenantApiKey")
            .WithSummary("Create an API key for a tenant; the key is shown once")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound);
        tenants.MapGet("/{tenantId}/api-keys", ListTenantApiKeys).WithName("listTenantApiKeys").WithSummary("List a tenant's API keys")
            .ProducesProblem(StatusCodes.Status404NotFound);
        admin.MapPost("/api-keys/{keyId}/revoke", RevokeApiKey).WithTags("Admin: tenants").WithName("revokeApiKey")
            .WithSummary("Revoke an API key; it stops working at once").ProducesProblem(StatusCodes.Status404NotFound);
        return admin;
    }

    public static async Task<Created<TenantResponse>> CreateTenant(CreateTenantRequest request, ClaimsPrincipal user, MetaComputeDbContext db,
        TimeProvider time, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var tenant = new Tenant { Id = Guid.CreateVersion7(now), Name = request.Name, Kind = request.Kind ?? TenantKind.External, CreatedAt = now };
        db.Tenants.Add(tenant);
        db.Append(EventTypes.TenantCreated, null, null, now, new
        {
            tenantId = tenant.Id, by = user.KeyIdOf(), before = (object?)null, after = new { tenant.Name, kind = WireEnum.Name(tenant.Kind) },
        });
        // A taken name fails on the unique index and answers 409 through the exception handler.
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/v1/admin/tenants/{tenant.Id}", tenant.ToResponse());
    }

    public static async Task<Results<Ok<TenantResponse>, ProblemHttpResult>> SetFairShare(Guid tenantId, SetFairShareRequest request,
        ClaimsPrincipal user, MetaComputeDbContext db, TimeProvider time, CancellationToken ct)
    {
        var tenant = await db.Tenants.FirstOrDefaultAsync(t => t.Id == tenantId, ct);
        if (tenant is null)
        {
            return Problems.NotFound($"Tenant '{tenantId}'");
        }

        var before = tenant.FairShareWeight;
        tenant.FairShareWeight = request.Weight;
        db.Append(EventTypes.TenantFairShareSet, null, null, time.GetUtcNow(), new { tenantId, by = user.KeyIdOf(), before, after = request.Weight });
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(tenant.ToResponse());
    }

    public static async Task<Ok<Page<TenantResponse>>> ListTenants([AsParameters] ListQuery query, MetaComputeDbContext db, CancellationToken ct)
    {
        Paging.TryDecode(query.PageToken, out var after);
        var limit = Paging.Limit(query.Limit);
        var tenants = db.Tenants.AsNoTracking();
        if (after is not null)
        {
            var afterId = Guid.Parse(after);
            tenants = tenants.Where(t => t.Id.CompareTo(afterId) > 0);
        }

        var page = await tenants.OrderBy(t => t.Id).Take(limit + 1).ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(page, limit, t => t.Id.ToString(), t => t.ToResponse()));
    }

    public static async Task<Results<Ok<TenantResponse>, ProblemHttpResult>> GetTenant(Guid tenantId, MetaComputeDbContext db, CancellationToken ct)
    {
        var tenant = await db.Tenants.AsNoTracking().FirstOrDefaultAsync(t => t.Id == tenantId, ct);
        return tenant is null ? Problems.NotFound($"Tenant '{tenantId}'") : TypedResults.Ok(tenant.ToResponse());
    }

    public static async Task<Results<Created<NewApiKeyResponse>, ProblemHttpResult>> CreateApiKey(Guid tenantId, CreateApiKeyRequest request,
        ClaimsPrincipal user, MetaComputeDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (!await db.Tenants.AnyAsync(t => t.Id == tenantId, ct))
        {
            return Problems.NotFound($"Tenant '{tenantId}'");
        }

        var now = time.GetUtcNow();
        var key = ApiKeys.Generate();
        var apiKey = new ApiKey
        {
            Id = Guid.CreateVersion7(now),
            TenantId = tenantId,
            Role = ApiKeyRole.Tenant,
            Name = request.Name ?? "",
            Prefix = ApiKeys.Prefix(key),
            KeyHash = ApiKeys.Hash(key),
            CreatedAt = now,
        };
        db.ApiKeys.Add(apiKey);
        db.Append(EventTypes.ApiKeyCreated, null, null, now, new { keyId = apiKey.Id, tenantId, apiKey.Prefix, apiKey.Name, by = user.KeyIdOf() });
        // A tenant deleted meanwhile fails the foreign key and answers 409.
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/v1/admin/tenants/{tenantId}/api-keys",
            new NewApiKeyResponse(apiKey.Id.ToString(), key, apiKey.Prefix, apiKey.Name, apiKey.CreatedAt));
    }

    public static async Task<Results<Ok<Page<ApiKeyResponse>>, ProblemHttpResult>> ListTenantApiKeys(Guid tenantId, MetaComputeDbContext db,
        CancellationToken ct)
    {
        if (!await db.Tenants.AnyAsync(t => t.Id == tenantId, ct))
        {
            return Problems.NotFound($"Tenant '{tenantId}'");
        }

        var keys = await db.ApiKeys.AsNoTracking().Where(k => k.TenantId == tenantId).OrderBy(k => k.Id).ToListAsync(ct);
        return TypedResults.Ok(new Page<ApiKeyResponse>(keys.Select(k => k.ToResponse()).ToList(), null));
    }

    public static async Task<Results<Ok<ApiKeyResponse>, ProblemHttpResult>> RevokeApiKey(Guid keyId, ClaimsPrincipal user, MetaComputeDbContext db,
        TimeProvider time, Auth.ApiKeyCache keys, CancellationToken ct)
    {
        // Set-based and idempotent: revoking twice keeps the first revocation time, and audits only the first.
        var now = time.GetUtcNow();
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            if (await db.ApiKeys.Where(k => k.Id == keyId && k.RevokedAt == null).ExecuteUpdateAsync(s => s.SetProperty(k => k.RevokedAt, now), ct) == 1)
            {
                db.Append(EventTypes.ApiKeyRevoked, null, null, now, new { keyId, by = user.KeyIdOf(), before = "active", after = "revoked" });
                await db.SaveChangesAsync(ct);
            }

            await tx.CommitAsync(ct);
        }

        keys.Remove(keyId);
        var key = await db.ApiKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Id == keyId, ct);
        return key is null ? Problems.NotFound($"API key '{keyId}'") : TypedResults.Ok(key.ToResponse());
    }

    public static TenantResponse ToResponse(this Tenant t) => new(t.Id.ToString(), t.Name, t.Kind, t.FairShareWeight, t.CreatedAt);

    public static ApiKeyResponse ToResponse(this ApiKey k) =>
        new(k.Id.ToString(), k.Prefix, k.Name, k.TenantId?.ToString(), k.CreatedAt, k.RevokedAt);
}
