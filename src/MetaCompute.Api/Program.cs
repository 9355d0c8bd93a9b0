using MetaCompute.Api.Admin;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Billing;
using MetaCompute.Api.Catalog;
using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using MetaCompute.Api.Health;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Offerings;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Tenants;
using Scalar.AspNetCore;

var builder = WebApplication.CreateBuilder(args);
builder.WebHost.ConfigureKestrel(RequestLimits.Configure);
builder.AddMetaComputeLogging();

string connectionString;
try
{
    connectionString = await PostgresSetup.ResolveConnectionStringAsync(builder);
}
catch (PostgresBinariesNotFoundException e)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}

builder.Services.AddMetaComputeApi(builder.Configuration, connectionString);

var app = builder.Build();

// Outermost, so each request's line shows the status the client got, also when the exception handler wrote it.
app.UseMetaComputeRequestLogging();
app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseRequestLimits();
app.UseAuthentication();
app.UseAuthorization();
app.UseRateLimiter();

if (app.Configuration["role"] != "scheduler")
{
    MapApi(app);
}

app.MapHealthEndpoints();
app.MapOpenApi().AllowAnonymous();
app.MapScalarApiReference("/docs", options => options.WithTitle("MetaCompute API")).AllowAnonymous();

await DatabaseInitializer.InitializeAsync(app.Services);
if (app.Configuration["role"] == "seed")
{
    // `--role seed`: migrate and seed, then exit (used to measure seeding).
    return 0;
}

app.Lifetime.ApplicationStarted.Register(() => StartupBanner.Print(app));
await app.RunAsync();
return 0;

public partial class Program
{
    /// <summary>The route table. Policy (auth, rate limit, validation) is applied once per group.</summary>
    private static void MapApi(WebApplication app)
    {
        var v1 = app.MapGroup("/v1")
            .RequireAuthorization()
            .RequireRateLimiting(RateLimiting.PerApiKey)
            .AddEndpointFilter<ValidationFilter>()
            .AddEndpointFilter<TransientRetryFilter>()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);

        v1.MapCatalogEndpoints();
        v1.MapAvailabilityEndpoints();
        v1.MapOfferingEndpoints();

        var tenant = v1.MapGroup("").RequireAuthorization(CallerClaims.TenantPolicy).ProducesProblem(StatusCodes.Status403Forbidden);
        tenant.MapTenantSelfEndpoints();
        tenant.MapReservationEndpoints();
        tenant.MapEventEndpoints();
        tenant.MapBillingEndpoints();

        var admin = v1.MapGroup("/admin").RequireAuthorization(CallerClaims.OperatorPolicy).ProducesProblem(StatusCodes.Status403Forbidden);
        admin.MapTenantAdminEndpoints();
        admin.MapQuotaAdminEndpoints();
        admin.MapNodeAdminEndpoints();
        admin.MapNodeRegistrationEndpoints();
        admin.MapMaintenanceEndpoints();
        admin.MapPoolAdminEndpoints();
        admin.MapUtilizationEndpoints();
        admin.MapAuditEndpoints();
        admin.MapRevenueEndpoints();
    }
}
