using System.Net;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;

namespace MetaCompute.Api.Tests;

public sealed class RateLimitedApiFactory : ApiFactory
{
    protected override IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?>
    {
        ["RateLimiting:PermitsPerSecond"] = "1",
        ["RateLimiting:Burst"] = "5",
    };
}

public sealed class RateLimitTests(RateLimitedApiFactory api) : IClassFixture<RateLimitedApiFactory>
{
    [Fact]
    public async Task A_key_over_its_limit_gets_429_with_retry_after_while_other_keys_carry_on()
    {
        // Creating the two tenants spends 4 of the operator key's 5 tokens, not the tenants'.
        var noisy = await api.CreateTenantAsync();
        var quiet = await api.CreateTenantAsync();
        using var noisyClient = api.ClientWithKey(noisy.ApiKey);

        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 8; i++)
        {
            answers.Add(await noisyClient.GetAsync("/v1/gpu-models"));
        }

        var limited = answers.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(limited);
        Assert.True(answers.Take(3).All(r => r.StatusCode == HttpStatusCode.OK));
        await limited[0].AssertProblemAsync(HttpStatusCode.TooManyRequests, Problems.RateLimitedType);
        Assert.True(limited[0].Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));

        using var quietClient = api.ClientWithKey(quiet.ApiKey);
        Assert.Equal(HttpStatusCode.OK, (await quietClient.GetAsync("/v1/gpu-models")).StatusCode);
    }
}
