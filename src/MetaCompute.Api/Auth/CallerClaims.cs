using System.Security.Claims;

namespace MetaCompute.Api.Auth;

public static class CallerClaims
{
    public const string KeyId = "key_id";
    public const string KeyPrefix = "key_prefix";
    public const string TenantId = "tenant_id";
    public const string TenantKind = "tenant_kind";
    public const string OperatorRole = "operator";
    public const string TenantRole = "tenant";

    public const string OperatorPolicy = "operator";
    public const string TenantPolicy = "tenant";

    /// <summary>The calling tenant; only valid behind the tenant policy, which guarantees the claim.</summary>
    public static Guid TenantIdOf(this ClaimsPrincipal user) =>
        Guid.Parse(user.FindFirstValue(TenantId) ?? throw new InvalidOperationException("The caller is not a tenant."));

    /// <summary>Whether the calling tenant is first-party; read with the key, so no request asks twice.</summary>
    public static Data.TenantKind TenantKindOf(this ClaimsPrincipal user) =>
        Enum.Parse<Data.TenantKind>(user.FindFirstValue(TenantKind) ?? throw new InvalidOperationException("The caller is not a tenant."));

    public static string? KeyIdOf(this ClaimsPrincipal user) => user.FindFirstValue(KeyId);
}
