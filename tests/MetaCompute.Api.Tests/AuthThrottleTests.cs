using System.Data.Common;
using System.Net;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace MetaCompute.Api.Tests;

/// <summary>The service as deployed, but allowing 5 failed authentications per address and one more a minute; it counts key look-ups.</summary>
public sealed class AuthThrottledApiFactory : ApiFactory
{
    public KeyLookUps LookUps { get; } = new();

    protected override IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?>
    {
        ["Auth:FailedAuthenticationBurst"] = "5",
        ["Auth:FailedAuthenticationsPerMinute"] = "1",
    };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureServices(services => services.ConfigureDbContext<MetaComputeDbContext>(options => options.AddInterceptors(LookUps)));
    }

    /// <summary>Counts the statements that read API keys, which is what a guessed key costs the database.</summary>
    public sealed class KeyLookUps : DbCommandInterceptor
    {
        private int _count;

        public int Count => _count;

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
            InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            if (command.CommandText.Contains("FROM api_keys", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _count);
            }

            return ValueTask.FromResult(result);
        }
    }
}

public sealed class AuthThrottleTests(AuthThrottledApiFactory api) : IClassFixture<AuthThrottledApiFactory>
{
    [Fact]
    public async Task Guessing_keys_is_answered_429_after_a_few_failures_without_asking_the_database()
    {
        var tenant = await api.CreateTenantAsync();
        var before = api.LookUps.Count;
        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 200; i++)
        {
            using var guesser = api.ClientWithKey("mc_guess_" + Guid.NewGuid().ToString("N"));
            answers.Add(await guesser.GetAsync("/v1/pools"));
        }

        Assert.All(answers.Take(5), a => Assert.Equal(HttpStatusCode.Unauthorized, a.StatusCode));
        Assert.All(answers.Skip(5), a => Assert.Equal(HttpStatusCode.TooManyRequests, a.StatusCode));
        var problem = await answers[^1].AssertProblemAsync(HttpStatusCode.TooManyRequests, Problems.RateLimitedType);
        Assert.Contains("retry after", problem.GetProperty("detail").GetString());
        Assert.True(answers[^1].Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        // Five look-ups for the five failures the address was allowed, none for the 195 after.
        Assert.Equal(5, api.LookUps.Count - before);

        // A key this address has not proven is refused too while it is throttled; operators are not locked out by it
        // where their key was validated before (the test operator's was, creating the tenant).
        using var tenantClient = api.ClientWithKey(tenant.ApiKey);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await tenantClient.GetAsync("/v1/pools")).StatusCode);
        using var operatorClient = api.OperatorClient();
        Assert.Equal(HttpStatusCode.OK, (await operatorClient.GetAsync("/v1/pools")).StatusCode);
    }

    [Fact]
    public void An_unknown_key_is_remembered_for_a_while_and_the_memory_stays_bounded()
    {
        var time = new FakeTimeProvider();
        using var failures = new FailedAuthentications(time, Options.Create(new AuthOptions { UnknownKeyMemory = TimeSpan.FromMinutes(5) }));
        failures.RememberUnknown("k1");
        time.Advance(TimeSpan.FromMinutes(4));
        Assert.True(failures.IsKnownUnknown("k1"));
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.False(failures.IsKnownUnknown("k1"));

        for (var i = 0; i < FailedAuthentications.MaxRememberedUnknownKeys + 10; i++)
        {
            failures.RememberUnknown("key-" + i);
            time.Advance(TimeSpan.FromMilliseconds(1));
        }

        Assert.True(failures.IsKnownUnknown("key-" + (FailedAuthentications.MaxRememberedUnknownKeys + 9)));
        Assert.False(failures.IsKnownUnknown("key-0"));
    }
}
