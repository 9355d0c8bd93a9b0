using System.Collections.Concurrent;
using MetaCompute.Api.Data;

namespace MetaCompute.Api.Auth;

/// <summary>What authentication needs to know about a key that is not revoked.</summary>
public sealed record ValidKey(Guid Id, Guid? TenantId, ApiKeyRole Role, string Prefix, TenantKind? TenantKind);

public sealed class AuthOptions
{
    /// <summary>
    /// How long a validated key is trusted without asking the database again. A revocation takes effect at once on
    /// the replica that revoked it and within this time on the others.
    /// </summary>
    public TimeSpan KeyCacheDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Failed authentications a client address may make at once before it is answered 429.</summary>
    public int FailedAuthenticationBurst { get; set; } = 20;

    /// <summary>Failed authentications a client address earns back per minute.</summary>
    public int FailedAuthenticationsPerMinute { get; set; } = 30;

    /// <summary>How long a key found unknown is answered 401 without asking the database again.</summary>
    public TimeSpan UnknownKeyMemory { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>Validated keys by hash, so a busy client does not cost a database query on every request.</summary>
public sealed class ApiKeyCache(TimeProvider time, Microsoft.Extensions.Options.IOptions<AuthOptions> options)
{
    private readonly ConcurrentDictionary<string, (ValidKey Key, DateTimeOffset Until)> _keys = new();

    public bool TryGet(byte[] hash, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ValidKey? key)
    {
        key = null;
        if (_keys.TryGetValue(Convert.ToBase64String(hash), out var entry) && entry.Until > time.GetUtcNow())
        {
            key = entry.Key;
            return true;
        }

        return false;
    }

    public void Add(byte[] hash, ValidKey key)
    {
        if (options.Value.KeyCacheDuration > TimeSpan.Zero)
        {
            _keys[Convert.ToBase64String(hash)] = (key, time.GetUtcNow() + options.Value.KeyCacheDuration);
        }
    }

    /// <summary>Forgets a key at once (it was revoked here).</summary>
    public void Remove(Guid keyId)
    {
        foreach (var (hash, entry) in _keys)
        {
            if (entry.Key.Id == keyId)
            {
                _keys.TryRemove(hash, out _);
            }
        }
    }
}
