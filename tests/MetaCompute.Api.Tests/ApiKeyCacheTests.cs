using MetaCompute.Api.Auth;
using MetaCompute.Api.Data;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace MetaCompute.Api.Tests;

public sealed class ApiKeyCacheTests
{
    private static readonly byte[] Hash = [1, 2, 3];
    private static readonly ValidKey Key = new(Guid.NewGuid(), Guid.NewGuid(), ApiKeyRole.Tenant, "mc_abc", TenantKind.External);

    [Fact]
    public void A_validated_key_is_trusted_only_for_the_cache_duration()
    {
        var time = new FakeTimeProvider();
        var cache = new ApiKeyCache(time, Options.Create(new AuthOptions { KeyCacheDuration = TimeSpan.FromSeconds(10) }));
        cache.Add(Hash, Key);

        time.Advance(TimeSpan.FromSeconds(9));
        Assert.True(cache.TryGet(Hash, out _));
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.False(cache.TryGet(Hash, out _));
    }

    [Fact]
    public void A_revocation_here_forgets_the_key_at_once()
    {
        var cache = new ApiKeyCache(new FakeTimeProvider(), Options.Create(new AuthOptions()));
        cache.Add(Hash, Key);
        cache.Remove(Key.Id);
        Assert.False(cache.TryGet(Hash, out _));
    }

    [Fact]
    public void A_zero_duration_turns_the_cache_off()
    {
        var cache = new ApiKeyCache(new FakeTimeProvider(), Options.Create(new AuthOptions { KeyCacheDuration = TimeSpan.Zero }));
        cache.Add(Hash, Key);
        Assert.False(cache.TryGet(Hash, out _));
    }
}
