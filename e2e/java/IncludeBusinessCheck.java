// The Java client openapi-generator writes from the served document (`java`, library
// `native`: Java 11's HttpClient and Jackson), against a running service and the register
// stub. e2e/run.sh generates the client, compiles it with this file and runs it:
//
//   java IncludeBusinessCheck <base URL>
//
// It passes only while a customer read with include=business arrives as a
// CustomerWithBusiness that holds the company: with a choice of schemas for that answer,
// the client tried Customer first, took it (unknown members are ignored) and dropped
// `business`.
import fi.customerapi.client.ApiClient;
import fi.customerapi.client.api.CustomersApi;
import fi.customerapi.client.model.AbstractOpenApiSchema;
import fi.customerapi.client.model.Customer;
import fi.customerapi.client.model.CustomerCreate;
import fi.customerapi.client.model.CustomerWithBusiness;

public final class IncludeBusinessCheck {
    private static final String BUSINESS_ID = "0112038-9"; // the one company the stub knows

    private IncludeBusinessCheck() {}

    public static void main(String[] args) throws Exception {
        ApiClient apiClient = new ApiClient();
        apiClient.updateBaseUri(args[0]);
        CustomersApi customers = new CustomersApi(apiClient);

        CustomerCreate body = new CustomerCreate()
                .name("Maija")
                .email("maija.java." + System.currentTimeMillis() + "@example.com")
                .businessId(BUSINESS_ID);
        Customer created = customers.createCustomer(body, null);

        // Object, and unwrapped: a document with a choice of schemas gets a wrapper type.
        Object read = customers.getCustomer(created.getId(), "business", null);
        if (read instanceof AbstractOpenApiSchema) {
            read = ((AbstractOpenApiSchema) read).getActualInstance();
        }
        check(read instanceof CustomerWithBusiness,
                "include=business was read as " + read.getClass().getSimpleName());
        CustomerWithBusiness rich = (CustomerWithBusiness) read;
        check(rich.getBusiness() != null, "the company was dropped");
        check(BUSINESS_ID.equals(rich.getBusiness().getBusinessId()), "another company");
        check(created.getId().equals(rich.getId()), "another customer");

        customers.deleteCustomer(created.getId(), null);
        System.out.println("java client: include=business read as CustomerWithBusiness");
    }

    private static void check(boolean condition, String what) {
        if (!condition) {
            System.err.println("java client: " + what);
            System.exit(1);
        }
    }
}
