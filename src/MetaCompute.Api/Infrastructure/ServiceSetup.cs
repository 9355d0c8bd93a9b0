using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using FluentValidation;
using FluentValidation.Internal;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Data;
using MetaCompute.Api.Health;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Infrastructure;

public static class ServiceSetup
{
    public static IServiceCollection AddMetaComputeApi(this IServiceCollection services, IConfiguration configuration, string connectionString)
    {
        services.AddSingleton(TimeProvider.System);
        services.AddDbContextPool<MetaComputeDbContext>(options => options
            .UseNpgsql(connectionString, npgsql => npgsql.MigrationsHistoryTable("__ef_migrations_history"))
            .UseSnakeCaseNamingConvention());

        services.Configure<JsonOptions>(options =>
        {
            options.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
            options.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
            options.SerializerOptions.Converters.Add(new MoneyJsonConverter());
            // A field without a default in its record is required: a body that leaves it out is a 400 naming it, never
            // a zero that slips past the validator (a quota of 0, a price of 0). The OpenAPI document says the same.
            options.SerializerOptions.RespectRequiredConstructorParameters = true;
        });
        // Malformed bodies and parameters throw, so the exception handler can answer problem+json saying where.
        services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);

        services.AddProblemDetails(options => options.CustomizeProblemDetails = context =>
        {
            var status = context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode;
            if (context.ProblemDetails.Type is null || context.ProblemDetails.Type.StartsWith("https://tools.ietf.org", StringComparison.Ordinal))
            {
                context.ProblemDetails.Type = Problems.TypeFor(status);
            }

            context.ProblemDetails.Instance ??= context.HttpContext.Request.Path;
            context.ProblemDetails.Extensions["traceId"] = Activity.Current?.TraceId.ToString() ?? context.HttpContext.TraceIdentifier;
        });
        services.AddExceptionHandler<ProblemExceptionHandler>();
        services.AddTransientFaultRetries();
        // Validators hold no state, and building one compiles its rules' expressions: build each once.
        services.AddValidatorsFromAssemblyContaining<ValidationFilter>(ServiceLifetime.Singleton, includeInternalTypes: true);
        // Field names as the JSON has them, in the errors' keys and in their messages ('poolId' must not be empty):
        // camelCase, nested ones dotted (rules.minGpus).
        ValidatorOptions.Global.PropertyNameResolver = (_, member, expression) =>
            expression is not null && PropertyChain.FromExpression(expression).ToString() is { Length: > 0 } chain
                ? string.Join('.', chain.Split('.').Select(JsonNamingPolicy.CamelCase.ConvertName))
                : member is null ? null : JsonNamingPolicy.CamelCase.ConvertName(member.Name);
        ValidatorOptions.Global.DisplayNameResolver = ValidatorOptions.Global.PropertyNameResolver;

        services.Configure<AuthOptions>(configuration.GetSection("Auth"));
        services.AddSingleton<ApiKeyCache>();
        services.AddSingleton<FailedAuthentications>();
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(CallerClaims.OperatorPolicy, p => p.RequireRole(CallerClaims.OperatorRole))
            .AddPolicy(CallerClaims.TenantPolicy, p => p.RequireRole(CallerClaims.TenantRole).RequireClaim(CallerClaims.TenantId));

        services.AddSingleton<Scheduling.PoolOccupancyCache>();
        services.AddSingleton<Scheduling.PoolDecider>();
        services.AddSingleton<Scheduling.NodeDirectory>();
        services.Configure<Catalog.CatalogOptions>(configuration.GetSection("Catalog"));
        services.AddSingleton<Catalog.PoolCache>();
        services.AddSingleton<Reservations.ReservationPools>();
        services.AddSingleton<Offerings.OfferingTokens>();
        services.AddScoped<Idempotency.IdempotentRequest>();
        services.Configure<Reservations.QuotaOptions>(configuration.GetSection("Quotas"));
        services.Configure<Maintenance.RetentionOptions>(configuration.GetSection("Retention"));
        services.AddHostedService<Maintenance.RetentionService>();
        services.Configure<Scheduling.SchedulerOptions>(configuration.GetSection("Scheduler"));
        services.Configure<Scheduling.FaultOptions>(configuration.GetSection("Simulation:Faults"));
        services.Configure<Billing.BillingOptions>(configuration.GetSection("Billing"));
        services.AddSingleton<Scheduling.FaultInjector>();
        // `--role api` serves HTTP without the scheduler; `--role scheduler` runs the scheduler (and health) only.
        if (configuration["role"] != "api" && configuration.GetValue("Scheduler:Enabled", true))
        {
            services.AddHostedService<Scheduling.SchedulerService>();
        }

        services.AddPerApiKeyRateLimiting(configuration);
        services.AddMetaComputeOpenApi();
        services.AddMetaComputeHealthChecks();
        return services;
    }
}
